//! `template.yaml` against the code: what the functions read, write and emit is what the template
//! sets, grants and watches. The template is decoded by cfn-lint's own CloudFormation YAML reader
//! (from `.venv`), so intrinsic functions arrive as `{"Fn::Sub": …}` objects.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use medusa_reset::api::{RESET_PASSWORD_ROUTE, UPDATE_PASSWORD_ROUTE};
use medusa_reset::domain::event::{PASSWORD_RESET, PASSWORD_UPDATED};
use medusa_reset::domain::password::HashParams;
use medusa_reset::observability::metrics::{COLD_STARTS, EMAILS, Latency, REQUEST_LATENCY, REQUESTS};
use medusa_reset::ratelimit::Limits;
use serde_json::{Value, json};

use crate::support::moto_endpoint;

fn template() -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    let script = "import json, sys\nfrom cfnlint.decode import decode\ntemplate, errors = decode(sys.argv[1])\n\
                  assert not errors, errors\nprint(json.dumps(template, default=str))";
    let output = Command::new(&python)
        .args(["-c", script, root.join("template.yaml").to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("{} (run `make test`, which creates .venv): {e}", python.display()));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the decoded template is JSON")
}

fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    let resource = &template["Resources"][name];
    assert!(resource.is_object(), "template.yaml has no resource {name}");
    resource
}

fn env_names(template: &Value, function: &str) -> Vec<String> {
    let variables = &resource(template, function)["Properties"]["Environment"]["Variables"];
    variables.as_object().expect("variables").keys().cloned().collect()
}

#[test]
fn each_function_gets_the_settings_the_code_reads() {
    let template = template();
    let reset = env_names(&template, "ResetPasswordFunction");
    for var in [
        "JWT_SECRET_ARN",
        "MEDUSA_DATABASE_SECRET_ARN",
        "SKIP_IDENTITY_CHECK",
        "FUNCTION_TIMEOUT_SECONDS",
        "RATE_LIMIT_TABLE",
        "RATE_LIMIT_UPDATE_PER_IP",
        "PASSWORD_HASH_LOG_N",
        "PASSWORD_HASH_R",
        "PASSWORD_HASH_P",
        "EVENT_BUS_NAME",
    ] {
        assert!(reset.contains(&var.to_owned()), "ResetPasswordFunction lacks {var}: {reset:?}");
    }
    assert!(!reset.contains(&"MEDUSA_DATABASE_URL".to_owned()), "no database URL in a plain variable");
    let notifier = env_names(&template, "NotifierFunction");
    for var in [
        "IDEMPOTENCY_TABLE",
        "RESET_URL_TEMPLATE_CUSTOMER",
        "RESET_URL_TEMPLATE_USER",
        "MAIL_FROM",
        "SHOP_NAME",
        "SHOP_LOGO_URL",
        "SHOP_BRAND_COLOR",
    ] {
        assert!(notifier.contains(&var.to_owned()), "NotifierFunction lacks {var}: {notifier:?}");
    }
    let globals = &template["Globals"]["Function"];
    assert_eq!(
        globals["Environment"]["Variables"]["METRICS_NAMESPACE"],
        serde_json::json!({"Ref": "MetricsNamespace"})
    );
    assert_eq!(globals["Tracing"], "Active");
    assert_eq!(globals["LoggingConfig"]["LogFormat"], "JSON");
    assert_eq!(globals["LoggingConfig"]["ApplicationLogLevel"], serde_json::json!({"Ref": "LogLevel"}));
}

#[test]
fn the_idempotency_table_is_keyed_expires_and_only_the_notifier_may_change_its_items() {
    let template = template();
    let table = &resource(&template, "IdempotencyTable")["Properties"];
    assert_eq!(table["KeySchema"], serde_json::json!([{"AttributeName": "pk", "KeyType": "HASH"}]));
    assert_eq!(table["AttributeDefinitions"], serde_json::json!([{"AttributeName": "pk", "AttributeType": "S"}]));
    assert_eq!(table["TimeToLiveSpecification"], serde_json::json!({"AttributeName": "expires_at", "Enabled": true}));
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    let policies = resource(&template, "NotifierFunction")["Properties"]["Policies"].to_string();
    assert!(policies.contains(r#""Action":["dynamodb:PutItem","dynamodb:DeleteItem"]"#), "{policies}");
    assert!(policies.contains(r#""Resource":{"Fn::GetAtt":["IdempotencyTable","Arn"]}"#), "{policies}");
    let reset_role = resource(&template, "ResetPasswordFunctionRole").to_string();
    assert!(reset_role.contains("RateLimitTable"), "the reset function's own role: {reset_role}");
    assert!(!reset_role.contains("IdempotencyTable"), "the reset function has no business with the claims");
}

#[test]
fn the_dashboard_is_json_and_shows_the_metrics_the_code_writes() {
    let template = template();
    let body = &resource(&template, "OperationsDashboard")["Properties"]["DashboardBody"]["Fn::Sub"];
    let text = body[0].as_str().expect("a Fn::Sub template string");
    // Substitute every ${…} as CloudFormation would, with sample values.
    let mut substituted = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        substituted.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed") + start;
        substituted.push_str(match &rest[start + 2..end] {
            "Namespace" => "MedusaReset",
            "AWS::Region" => "eu-west-1",
            _ => "sample",
        });
        rest = &rest[end + 1..];
    }
    substituted.push_str(rest);
    let dashboard: Value =
        serde_json::from_str(&substituted).unwrap_or_else(|e| panic!("not JSON ({e}): {substituted}"));
    assert_eq!(dashboard["widgets"].as_array().expect("widgets").len(), 5);
    let names = [REQUESTS, EMAILS, REQUEST_LATENCY, COLD_STARTS].into_iter().chain(Latency::ALL.map(Latency::name));
    for name in names {
        assert!(substituted.contains(name), "the dashboard does not show {name}");
    }
    assert!(substituted.contains("ApproximateNumberOfMessagesVisible"), "dead-letter depth");
}

#[test]
fn every_alarm_notifies_the_optional_topic_and_watches_an_outcome_the_code_logs() {
    let template = template();
    let alarms: Vec<(&String, &Value)> = template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    let names: Vec<&str> = alarms.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "ResetServerErrorRateAlarm",
        "NotifierTransientFailureAlarm",
        "NotifierErrorAlarm",
        "NotifierDeadLetterAlarm",
        "SesBounceRateAlarm",
        "SesComplaintRateAlarm",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    for (name, alarm) in &alarms {
        let actions = alarm["Properties"]["AlarmActions"].to_string();
        assert!(actions.contains("HasAlarmTopic") && actions.contains("AlarmTopicArn"), "{name}: {actions}");
    }
    let transient = &resource(&template, "NotifierTransientFailureAlarm")["Properties"]["Dimensions"][0];
    let outcome = transient["Value"].as_str().unwrap();
    let notifier =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/notify/notifier.rs")).unwrap();
    assert!(notifier.contains(&format!("\"{outcome}\"")), "the notifier never logs the outcome {outcome}");
}

#[test]
fn tokens_are_sealed_by_default_with_a_rotating_key_whose_every_use_names_subject_and_jti() {
    let template = template();
    assert_eq!(template["Parameters"]["SealTokenWithKms"]["Default"], "true");
    let key = &resource(&template, "TokenKey")["Properties"];
    assert_eq!(key["EnableKeyRotation"], true);
    let context = json!({
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["subject", "jti"]},
        "Null": {"kms:EncryptionContext:subject": "false", "kms:EncryptionContext:jti": "false"},
    });
    // A statement behind Fn::If (the token readers') counts as its "true" branch.
    let statements: Vec<&Value> = key["KeyPolicy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.get("Fn::If").map_or(s, |branches| &branches[1]))
        .filter(|s| s["Action"] == "kms:Encrypt" || s["Action"] == "kms:Decrypt")
        .collect();
    let sids: Vec<&Value> = statements.iter().map(|s| &s["Sid"]).collect();
    assert_eq!(sids, ["ResetFunctionEncryptsOnly", "NotifierDecryptsOnly", "TokenReadersDecryptOnly"]);
    for statement in statements {
        assert_eq!(statement["Condition"], context, "{statement}");
    }
}

#[test]
fn the_signing_secret_medusa_shares_outlives_the_stack() {
    let template = template();
    let secret = resource(&template, "JwtSecret");
    assert_eq!(secret["DeletionPolicy"], "Retain");
    assert_eq!(secret["UpdateReplacePolicy"], "Retain");
}

#[test]
fn api_access_logs_are_json_lines_of_request_source_route_status_and_latency_without_path_query_or_body() {
    let template = template();
    let settings = &resource(&template, "HttpApi")["Properties"]["AccessLogSettings"];
    assert_eq!(settings["DestinationArn"], json!({"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}));
    assert!(resource(&template, "ApiAccessLogGroup")["Properties"]["RetentionInDays"].is_u64());
    let format = settings["Format"].as_str().expect("a format string");
    let fields: Value = serde_json::from_str(format).unwrap_or_else(|e| panic!("not JSON ({e}): {format}"));
    let values: Vec<&Value> = fields.as_object().expect("an object").values().collect();
    for variable in [
        "$context.requestId",
        "$context.identity.sourceIp",
        "$context.routeKey",
        "$context.status",
        "$context.responseLatency",
        "$context.integrationLatency",
    ] {
        assert!(values.contains(&&json!(variable)), "{variable} missing: {format}");
    }
    for word in ["path", "query", "body", "$request", "$input"] {
        assert!(!format.to_lowercase().contains(&word.to_lowercase()), "{word} in {format}");
    }
}

#[test]
fn the_reset_route_has_a_throttle_of_its_own_and_the_function_a_concurrency_cap() {
    let template = template();
    let function = &resource(&template, "ResetPasswordFunction")["Properties"];
    let throttle = json!({
        "ThrottlingRateLimit": {"Ref": "ResetRouteThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ResetRouteThrottlingBurstLimit"},
    });
    let route_settings = &resource(&template, "HttpApi")["Properties"]["RouteSettings"];
    for event in ["ResetPassword", "ResetPasswordPreflight"] {
        let route = &function["Events"][event]["Properties"];
        let key = format!("{} {}", route["Method"].as_str().unwrap(), route["Path"].as_str().unwrap());
        assert_eq!(route_settings[&key], throttle, "{key}: {route_settings}");
    }
    assert_eq!(
        function["ReservedConcurrentExecutions"],
        json!({"Fn::If": ["CapResetConcurrency", {"Ref": "ResetFunctionReservedConcurrency"}, {"Ref": "AWS::NoValue"}]})
    );
}

/// `function`'s HttpApi events on the stack's API, as route keys (`POST /auth/…`).
fn route_keys(template: &Value, function: &str) -> Vec<String> {
    let events = resource(template, function)["Properties"]["Events"].as_object().expect("events");
    let routes = events.values().filter(|e| e["Type"] == "HttpApi").map(|e| &e["Properties"]);
    routes
        .inspect(|route| assert_eq!(route["ApiId"], json!({"Ref": "HttpApi"}), "{route}"))
        .map(|route| format!("{} {}", route["Method"].as_str().unwrap(), route["Path"].as_str().unwrap()))
        .collect()
}

#[test]
fn the_reset_function_serves_the_routes_the_router_has_each_with_its_cors_preflight() {
    let template = template();
    let mut keys = route_keys(&template, "ResetPasswordFunction");
    keys.sort();
    let mut expected: Vec<String> = [RESET_PASSWORD_ROUTE, UPDATE_PASSWORD_ROUTE]
        .iter()
        .flat_map(|path| [format!("POST {path}"), format!("OPTIONS {path}")])
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
    assert!(route_keys(&template, "NotifierFunction").is_empty(), "the notifier is no route's");
}

#[test]
fn the_update_route_and_its_preflight_have_a_throttle_of_their_own() {
    let template = template();
    let throttle = json!({
        "ThrottlingRateLimit": {"Ref": "UpdateRouteThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "UpdateRouteThrottlingBurstLimit"},
    });
    let route_settings = &resource(&template, "HttpApi")["Properties"]["RouteSettings"];
    for method in ["POST", "OPTIONS"] {
        let key = format!("{method} {UPDATE_PASSWORD_ROUTE}");
        assert_eq!(route_settings[&key], throttle, "{key}: {route_settings}");
    }
    for name in ["UpdateRouteThrottlingRateLimit", "UpdateRouteThrottlingBurstLimit"] {
        let parameter = &template["Parameters"][name];
        assert!(parameter["Default"].as_u64().is_some_and(|d| d >= 1), "{name}: {parameter}");
        assert_eq!(parameter["MinValue"], 1, "{name}: {parameter}");
    }
}

#[test]
fn the_reset_function_alone_gets_more_memory_for_scrypt_from_its_own_parameter() {
    let template = template();
    assert_eq!(template["Globals"]["Function"]["MemorySize"], 128);
    let function = &resource(&template, "ResetPasswordFunction")["Properties"];
    assert_eq!(function["MemorySize"], json!({"Ref": "ResetFunctionMemorySize"}));
    let parameter = &template["Parameters"]["ResetFunctionMemorySize"];
    assert_eq!(
        (&parameter["Default"], &parameter["MinValue"], &parameter["MaxValue"]),
        (&json!(1024), &json!(128), &json!(10240))
    );
    // Even the smallest size holds Medusa's default scrypt table with room for the function itself.
    assert!(HashParams::default().memory_bytes() * 2 < 128 * 1024 * 1024);
    assert!(
        resource(&template, "NotifierFunction")["Properties"].get("MemorySize").is_none(),
        "the notifier keeps 128 MB"
    );
}

#[test]
fn the_password_hash_and_update_limit_variables_come_from_parameters_whose_defaults_are_the_codes() {
    let template = template();
    let variables = &resource(&template, "ResetPasswordFunction")["Properties"]["Environment"]["Variables"];
    let defaults = HashParams::default();
    let limit = Limits::default().update_per_ip;
    for (variable, parameter, default) in [
        ("PASSWORD_HASH_LOG_N", "PasswordHashLogN", json!(defaults.log_n())),
        ("PASSWORD_HASH_R", "PasswordHashR", json!(defaults.r())),
        ("PASSWORD_HASH_P", "PasswordHashP", json!(defaults.p())),
        (
            "RATE_LIMIT_UPDATE_PER_IP",
            "RateLimitUpdatePerIp",
            json!(format!("{}/{}", limit.max, limit.window.as_secs())),
        ),
    ] {
        assert_eq!(variables[variable], json!({"Ref": parameter}), "{variable}");
        assert_eq!(template["Parameters"][parameter]["Default"], default, "{parameter}");
    }
    for parameter in ["PasswordHashLogN", "PasswordHashR", "PasswordHashP"] {
        let spec = &template["Parameters"][parameter];
        assert_eq!(spec["Type"], "Number", "{parameter}");
        assert!(spec["MinValue"] == 1 && spec["MaxValue"].is_u64(), "{parameter}: {spec}");
        let description = spec["Description"].as_str().unwrap_or_default().replace('\n', " ");
        assert!(description.contains("hashConfig in medusa-config"), "{parameter}: {description}");
    }
}

#[test]
fn one_notifier_rule_takes_reset_and_password_updated_events_and_parks_its_failures_in_the_queue() {
    let template = template();
    let events = resource(&template, "NotifierFunction")["Properties"]["Events"].as_object().expect("events");
    let rules: Vec<(&String, &Value)> = events.iter().filter(|(_, e)| e["Type"] == "EventBridgeRule").collect();
    // The queue's policy lets one rule send to it: a second rule would park its failures nowhere.
    let [(name, rule)] = rules[..] else { panic!("one rule for both detail-types: {events:?}") };
    let rule = &rule["Properties"];
    assert_eq!(rule["EventBusName"], json!({"Fn::GetAtt": ["AuthEventBus", "Name"]}));
    assert_eq!(
        rule["Pattern"],
        json!({"source": [{"Ref": "EventSource"}], "detail-type": [PASSWORD_RESET, PASSWORD_UPDATED]})
    );
    assert_eq!(rule["DeadLetterConfig"]["Arn"], json!({"Fn::GetAtt": ["NotifierDeadLetterQueue", "Arn"]}));
    assert!(rule["RetryPolicy"]["MaximumRetryAttempts"].is_u64(), "{rule}");
    // SAM names the rule it makes after the function and the event.
    let policy = resource(&template, "NotifierDeadLetterQueuePolicy")["Properties"]["PolicyDocument"].to_string();
    let source = json!({"aws:SourceArn": {"Fn::GetAtt": [format!("NotifierFunction{name}"), "Arn"]}}).to_string();
    assert!(policy.contains(&source), "the queue's policy does not name the rule: {policy}");
}

#[test]
fn ses_reputation_alarms_go_off_at_the_rates_where_ses_starts_reviewing_the_account() {
    let template = template();
    for (alarm, metric, threshold) in [
        ("SesBounceRateAlarm", "Reputation.BounceRate", 0.05),
        ("SesComplaintRateAlarm", "Reputation.ComplaintRate", 0.001),
    ] {
        let properties = &resource(&template, alarm)["Properties"];
        assert_eq!(properties["Namespace"], "AWS/SES");
        assert_eq!(properties["MetricName"], metric);
        assert_eq!(properties["Threshold"].as_f64(), Some(threshold));
        assert_eq!(properties["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
    }
}

/// `tools/check_deployability.py` on the template at `path`, with SAM's translator from the SAM CLI's
/// venv: whether every configuration passed, and the report.
fn check_deployability(path: &Path) -> (bool, String) {
    run_sam_tool("check_deployability.py", &[path.as_os_str()])
}

/// `tools/deploy_on_moto.py`: the template at `path` created as a stack on the moto `make test` started,
/// in every configuration, and read back.
fn deploy_on_moto(path: &Path) -> (bool, String) {
    run_sam_tool("deploy_on_moto.py", &[OsStr::new(&moto_endpoint()), path.as_os_str()])
}

fn run_sam_tool(script: &str, args: &[&OsStr]) -> (bool, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/sam/bin/python");
    let output = Command::new(&python)
        .arg(root.join("tools").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} (run `make test`, which creates .venv/sam): {e}", python.display()));
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), report)
}

/// The check on `template.yaml` as `change` leaves it must fail, naming each of `expected`.
fn refused_after(change: impl FnOnce(&mut Value), expected: &[&str]) {
    refused_by(check_deployability, change, expected);
}

/// `tool` on `template.yaml` as `change` leaves it must fail, naming each of `expected`.
fn refused_by(tool: fn(&Path) -> (bool, String), change: impl FnOnce(&mut Value), expected: &[&str]) {
    let mut template = template();
    change(&mut template);
    let path = std::env::temp_dir().join(format!("template-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, serde_json::to_vec(&template).unwrap()).unwrap();
    let (passed, report) = tool(&path);
    std::fs::remove_file(&path).ok();
    assert!(!passed, "the check passed:\n{report}");
    for text in expected {
        assert!(report.contains(text), "no {text:?} in:\n{report}");
    }
}

/// The statement with `sid` in the first inline policy of `resource` (a function's `Policies` or a
/// role's).
fn statement_mut<'a>(template: &'a mut Value, resource: &str, sid: &str) -> &'a mut Value {
    let properties = &mut template["Resources"][resource]["Properties"];
    let policy = &mut properties["Policies"][0];
    let statements = if policy["PolicyDocument"].is_object() { &mut policy["PolicyDocument"] } else { policy };
    let found = statements["Statement"].as_array_mut().unwrap().iter_mut().find(|s| s["Sid"] == sid);
    found.unwrap_or_else(|| panic!("{resource} has no statement {sid}"))
}

#[test]
fn the_stack_deploys_in_every_documented_configuration_as_sam_translates_it() {
    let (passed, report) = check_deployability(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("template.yaml"));
    assert!(passed, "{report}");
    assert_eq!(report.lines().filter(|line| line.starts_with("ok")).count(), 3 * 2 * 2 * 2 * 2 + 1, "{report}");
}

#[test]
fn the_stack_is_created_on_motos_cloudformation_in_every_documented_configuration() {
    let (passed, report) = deploy_on_moto(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("template.yaml"));
    assert!(passed, "{report}");
    assert_eq!(report.lines().filter(|line| line.starts_with("ok")).count(), 3 * 2 * 2 * 2 * 2, "{report}");
}

#[test]
fn the_stack_on_moto_shows_a_rule_that_leaves_the_notice_undelivered() {
    let change = |t: &mut Value| {
        let events = &mut t["Resources"]["NotifierFunction"]["Properties"]["Events"]["PasswordReset"];
        events["Properties"]["Pattern"]["detail-type"] = json!([PASSWORD_RESET]);
    };
    refused_by(deploy_on_moto, change, &["the rule matches ['auth.password_reset']"]);
}

#[test]
fn the_stack_on_moto_shows_a_token_key_that_is_never_rotated() {
    let change = |t: &mut Value| t["Resources"]["TokenKey"]["Properties"]["EnableKeyRotation"] = json!(false);
    refused_by(deploy_on_moto, change, &["the token key's rotation is off"]);
}

#[test]
fn the_deployability_check_refuses_a_rule_using_a_function_rules_do_not_accept() {
    let join = json!({"Fn::Not": [{"Fn::Equals": [{"Fn::Join": [",", {"Ref": "VpcSubnetIds"}]}, ""]}]});
    let change = |t: &mut Value| t["Rules"]["EndpointsNeedTheVpc"]["RuleCondition"]["Fn::And"][0] = join;
    refused_after(change, &["Rules/EndpointsNeedTheVpc uses Fn::Join, which Rules do not accept"]);
}

#[test]
fn the_deployability_check_refuses_the_vpc_policy_twice_in_a_vpc_and_at_all_outside_one() {
    // The reset function on a role SAM makes (which adds the policy for any VpcConfig) and the policy added again.
    let policy = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole";
    let change = |t: &mut Value| {
        t["Resources"].as_object_mut().unwrap().remove("ResetPasswordFunctionRole");
        let function = t["Resources"]["ResetPasswordFunction"]["Properties"].as_object_mut().unwrap();
        function.remove("Role");
        let policies = json!([{"Fn::If": ["InVpc", {"Fn::Sub": policy}, {"Ref": "AWS::NoValue"}]}]);
        function.insert("Policies".to_owned(), policies);
    };
    let twice = "lists arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole 2 times";
    let outside = "has AWSLambdaVPCAccessExecutionRole, but no function of it runs in a VPC";
    refused_after(change, &[twice, outside]);
}

#[test]
fn the_deployability_check_refuses_a_reference_to_a_resource_some_configurations_leave_out() {
    let change = |t: &mut Value| {
        let variables = &mut t["Resources"]["ResetPasswordFunction"]["Properties"]["Environment"]["Variables"];
        variables["TOKEN_KMS_KEY_ID"] = json!({"Ref": "TokenKey"});
    };
    refused_after(
        change,
        &[
            "ResetPasswordFunction: TOKEN_KMS_KEY_ID names TokenKey, which is not created",
            "Ref TokenKey, which is neither a parameter nor a created resource",
        ],
    );
}

#[test]
fn the_deployability_check_refuses_an_environment_variable_that_is_a_list() {
    let change = |t: &mut Value| {
        let variables = &mut t["Resources"]["ResetPasswordFunction"]["Properties"]["Environment"]["Variables"];
        variables["SUBNETS"] = json!({"Ref": "VpcSubnetIds"});
    };
    refused_after(change, &["SUBNETS is the list parameter VpcSubnetIds, not a string"]);
}

#[test]
fn the_deployability_check_refuses_a_grant_on_every_resource_that_the_readme_does_not_explain() {
    let change = |t: &mut Value| {
        let statement = statement_mut(t, "ResetPasswordFunctionRole", "ReadTheSigningSecretOnly");
        statement["Resource"] = json!("*");
    };
    refused_after(change, &["ResetPasswordFunctionRole: statement ReadTheSigningSecretOnly grants on Resource '*'"]);
}

#[test]
fn the_deployability_check_refuses_a_from_address_condition_that_keeps_the_display_name() {
    let change = |t: &mut Value| {
        let statement = statement_mut(t, "NotifierFunction", "SendAsTheSenderIdentityOnly");
        statement["Condition"]["StringEquals"]["ses:FromAddress"] = json!({"Ref": "MailFrom"});
    };
    let expected = "needs ses:FromAddress 'no-reply@shop.example.com', not ['Shop <no-reply@shop.example.com>']";
    refused_after(change, &[expected]);
}

#[test]
fn the_deployability_check_refuses_a_route_throttle_for_a_route_the_api_does_not_have() {
    let change = |t: &mut Value| {
        let events = t["Resources"]["ResetPasswordFunction"]["Properties"]["Events"].as_object_mut().unwrap();
        events.remove("UpdatePassword").expect("the update route's event");
    };
    let expected = format!("RouteSettings names POST {UPDATE_PASSWORD_ROUTE}, which is not a route of HttpApi");
    refused_after(change, &[&expected]);
}

#[test]
fn the_deployability_check_refuses_rules_that_let_a_contradiction_through() {
    let change = |t: &mut Value| {
        t["Rules"].as_object_mut().unwrap().remove("TokenReadersNeedSealing");
    };
    refused_after(change, &["token readers without sealing: the Rule TokenReadersNeedSealing does not refuse it"]);
}
