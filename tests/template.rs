//! `template.yaml` against the code: what the functions read, write and emit is what the template
//! sets, grants and watches. The template is decoded by cfn-lint's own CloudFormation YAML reader
//! (from `.venv`), so intrinsic functions arrive as `{"Fn::Sub": …}` objects.

mod support;

use std::path::PathBuf;
use std::process::Command;

use medusa_reset::metrics::{COLD_STARTS, EMAILS, Latency, REQUEST_LATENCY, REQUESTS};
use serde_json::Value;

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
    let reset_policies = resource(&template, "ResetPasswordFunction")["Properties"]["Policies"].to_string();
    assert!(!reset_policies.contains("IdempotencyTable"), "the reset function has no business with the claims");
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
    for expected in
        ["ResetServerErrorRateAlarm", "NotifierTransientFailureAlarm", "NotifierErrorAlarm", "NotifierDeadLetterAlarm"]
    {
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
