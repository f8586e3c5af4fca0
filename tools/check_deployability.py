"""template.yaml as CloudFormation meets it, in every documented configuration.

Linters read the template as written; CloudFormation deploys what SAM makes of it for one set of
parameters. So, for each configuration below, this translates the template with SAM's own translator
(the pinned SAM CLI's samtranslator), resolves its conditions, and checks what would be created:

- every Rule uses only the functions CloudFormation accepts in Rules, and the documented
  configurations pass the Rules while the contradictory ones are refused by the Rule meant for them;
- no role lists a managed policy twice (IAM refuses the role), and only a function in a VPC has the
  VPC access policy;
- every Ref, GetAtt, Sub and DependsOn names a parameter or a resource created in that configuration;
- every function environment variable is a string made of inputs and created resources;
- no policy statement grants on Resource "*" unless WILDCARD_RESOURCES says why;
- every route a stage's RouteSettings name (the per-route throttles) is a route of its API: API Gateway
  refuses the stage otherwise ("Unable to find Route by key ... within the provided RouteSettings");
- the notifier's ses:FromAddress condition is the bare address SES compares, whatever MailFrom's form.

Usage: .venv/sam/bin/python tools/check_deployability.py [TEMPLATE]   (YAML or JSON; default template.yaml)
Prints one line per configuration; exits 1 when any check fails.
"""

import copy
import email.utils
import itertools
import json
import logging
import re
import sys
from pathlib import Path

from boto3.session import Session
from samtranslator.parser import parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::NotificationARNs": [],
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/medusa-reset/1",
    "AWS::StackName": "medusa-reset",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = object()

# CloudFormation validates Rules with these functions only; anything else (even Fn::If) fails every deployment.
RULE_FUNCTIONS = {
    "Fn::And", "Fn::Contains", "Fn::EachMemberEquals", "Fn::EachMemberIn", "Fn::Equals", "Fn::Not",
    "Fn::Or", "Fn::RefAll", "Fn::ValueOf", "Fn::ValueOfAll", "Ref",
}
RULE_KEYS = {"RuleCondition", "Assertions", "Assert", "AssertDescription"}

# Statements that may grant on Resource "*", each with its reason (the README's Deployment section says the same).
WILDCARD_RESOURCES = {
    # In a key policy "*" is the key the policy belongs to: a key policy can name no other resource.
    ("TokenKey", "AccountAdministersTheKey"): "key policy: the account administers this key",
    ("TokenKey", "ResetFunctionEncryptsOnly"): "key policy: the reset function encrypts with this key",
    ("TokenKey", "NotifierDecryptsOnly"): "key policy: the notifier decrypts with this key",
    ("TokenKey", "TokenReadersDecryptOnly"): "key policy: TokenReaderRoleArns decrypt with this key",
}

VPC_ACCESS_POLICY = "/AWSLambdaVPCAccessExecutionRole"

# The OpenAPI operations of SAM's HttpApi body, as the methods of their route keys.
OPENAPI_METHODS = {
    "get": "GET", "put": "PUT", "post": "POST", "delete": "DELETE", "options": "OPTIONS", "head": "HEAD",
    "patch": "PATCH", "x-amazon-apigateway-any-method": "ANY",
}

REQUIRED = {
    "SenderIdentity": "shop.example.com",
    "MailFrom": "Shop <no-reply@shop.example.com>",
    "CustomerResetUrlTemplate": "https://shop.example.com/reset-password?token={token}&email={email}",
}
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:medusa-{}-AbCdEf"
# The parameters that change resources or policies, each with the values documented in the README.
AXES = [
    ("sealing", [("sealed", {"SealTokenWithKms": "true"}), ("plain", {"SealTokenWithKms": "false"})]),
    ("network", [
        ("no VPC", {}),
        ("VPC with endpoints", {
            "VpcSubnetIds": "subnet-0a,subnet-0b", "VpcSecurityGroupIds": "sg-0a", "VpcId": "vpc-0a",
            "VpcCidrBlock": "10.0.0.0/16", "VpcRouteTableIds": "rtb-0a", "CreateVpcEndpoints": "true"}),
        ("VPC without endpoints", {
            "VpcSubnetIds": "subnet-0a", "VpcSecurityGroupIds": "sg-0a", "CreateVpcEndpoints": "false"}),
    ]),
    ("backend", [("no backend proxy", {}), ("backend proxy", {"MedusaBackendUrl": "https://medusa.example.com"})]),
    ("signing secret", [("stack-made secret", {}), ("given secret", {"JwtSecretArn": SECRET.format("jwt")})]),
    ("identity", [
        ("skip identity", {"SkipIdentityCheck": "true"}),
        ("database secret", {"SkipIdentityCheck": "false", "MedusaDatabaseSecretArn": SECRET.format("db")}),
    ]),
]
# Optional inputs, on in half of the configurations (chosen so that each meets every value of every axis).
EXTRAS = {
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alarms",
    "SesConfigurationSet": "reset-mail",
    "MailFrom": "no-reply@shop.example.com",
    "UserResetUrlTemplate": "https://medusa.example.com/app/reset-password?token={token}&email={email}",
    "AuthProviders": "customer=emailpass;user=emailpass",
    # The defaults cap the reset function and leave the notifier uncapped: the optional inputs turn both.
    "ResetFunctionReservedConcurrency": "-1",
    "NotifierReservedConcurrency": "5",
}
SEALED_EXTRAS = {"TokenReaderRoleArns": "arn:aws:iam::123456789012:role/crm-notifier"}
DATABASE_EXTRAS = {"MedusaDatabaseSecretKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab"}

# Contradictions each Rule is there to refuse: (name, parameters, the Rule that must refuse them).
REFUSED = [
    ("identity check without a database", {"SkipIdentityCheck": "false"}, "IdentityCheckNeedsTheDatabase"),
    ("skip identity beside a database",
     {"SkipIdentityCheck": "true", "MedusaDatabaseSecretArn": SECRET.format("db")}, "SkippingTheCheckNeedsNoDatabase"),
    ("VPC endpoints without the VPC's details",
     {"SkipIdentityCheck": "true", "VpcSubnetIds": "subnet-0a", "VpcSecurityGroupIds": "sg-0a"}, "EndpointsNeedTheVpc"),
    ("a reset function that may never run", {"SkipIdentityCheck": "true", "ResetFunctionReservedConcurrency": "0"},
     "ReservedConcurrencyIsNotZero"),
    ("a notifier that may never run", {"SkipIdentityCheck": "true", "NotifierReservedConcurrency": "0"},
     "ReservedConcurrencyIsNotZero"),
    ("token readers without sealing",
     {"SkipIdentityCheck": "true", "SealTokenWithKms": "false", "TokenReaderRoleArns": "arn:aws:iam::1:role/r"},
     "TokenReadersNeedSealing"),
]


def configurations():
    """(name, parameters) for every combination of AXES, with EXTRAS on in half of them."""
    for choice in itertools.product(*(enumerate(values) for _, values in AXES)):
        params = dict(REQUIRED)
        for _, (_, values) in choice:
            params.update(values)
        extras = sum(index for index, _ in choice) % 2 == 1
        if extras:
            params.update(EXTRAS)
            params.update(SEALED_EXTRAS if params["SealTokenWithKms"] == "true" else {})
            params.update(DATABASE_EXTRAS if "MedusaDatabaseSecretArn" in params else {})
        name = ", ".join(label for _, (label, _) in choice) + (", with the optional inputs" if extras else "")
        yield name, params


def translate(template, params):
    """The CloudFormation template SAM makes of `template` for `params`, as the transform would."""
    template = copy.deepcopy(template)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            # Packaging replaces the local folder with an S3 object; the translator accepts only the latter.
            resource.setdefault("Properties", {})["CodeUri"] = "s3://bucket/bootstrap.zip"
    translator = Translator(None, parser.Parser(), plugins=[], boto_session=Session(region_name=PSEUDO["AWS::Region"]))
    return translator.translate(template, dict(params), get_managed_policy_map=lambda: {})


def parameter_values(template, given):
    """Every parameter's value as Ref yields it (lists for list types), or an error naming what is wrong."""
    values, errors = dict(PSEUDO), []
    for name, spec in template.get("Parameters", {}).items():
        if name not in given and "Default" not in spec:
            errors.append(f"parameter {name} has no value")
            continue
        value = str(given.get(name, spec.get("Default")))
        errors += [f"parameter {name}={value!r}: {e}" for e in parameter_errors(spec, value)]
        values[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value
    errors += [f"parameter {name} is not in the template" for name in given if name not in values]
    return values, errors


def parameter_errors(spec, value):
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        yield f"not one of {spec['AllowedValues']}"
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        yield f"does not match {spec['AllowedPattern']}"
    if spec["Type"] == "Number":
        number = float(value)
        if "MinValue" in spec and number < float(spec["MinValue"]):
            yield f"under {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            yield f"over {spec['MaxValue']}"


def evaluate(node, values, condition=None):
    """The value of a condition or of a string-valued expression made of parameters."""
    if isinstance(node, (str, int, float, bool)):
        return str(node).lower() if isinstance(node, bool) else str(node)
    if isinstance(node, list):
        return [evaluate(item, values, condition) for item in node]
    (function, args), = node.items()
    ev = lambda arg: evaluate(arg, values, condition)  # noqa: E731
    if function == "Ref":
        return values[args]
    if function == "Condition":
        return condition(args)
    if function == "Fn::Equals":
        return ev(args[0]) == ev(args[1])
    if function == "Fn::Not":
        return not ev(args[0])
    if function == "Fn::And":
        return all(ev(arg) for arg in args)
    if function == "Fn::Or":
        return any(ev(arg) for arg in args)
    if function == "Fn::Join":
        return args[0].join(ev(args[1]))
    if function == "Fn::Split":
        return ev(args[1]).split(args[0])
    if function == "Fn::Select":
        return ev(args[1])[int(ev(args[0]))]
    if function == "Fn::Sub":
        text, local = (args, {}) if isinstance(args, str) else args
        scope = {**values, **{k: ev(v) for k, v in local.items()}}
        return re.sub(r"\$\{([^!}][^}]*)\}", lambda m: str(scope[m.group(1)]), text)
    raise ValueError(f"cannot evaluate {function}")


def condition_values(template, values):
    definitions, resolved = template.get("Conditions", {}), {}

    def condition(name):
        if name not in resolved:
            resolved[name] = bool(evaluate(definitions[name], values, condition))
        return resolved[name]

    for name in definitions:
        condition(name)
    return resolved


def rule_misuse(template):
    """Functions and keys in Rules that CloudFormation does not accept there."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in RULE_FUNCTIONS and key not in RULE_KEYS:
                    found.append(f"Rules/{where} uses {key}, which Rules do not accept")
                walk(value, where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    for name, rule in template.get("Rules", {}).items():
        walk(rule, name)
    return sorted(set(found))


def rule_value(node, values):
    """A rule expression's value, with the rule-specific functions' meanings."""
    if isinstance(node, (str, int, float)):
        return str(node)
    if isinstance(node, list):
        return [rule_value(item, values) for item in node]
    (function, args), = node.items()
    ev = lambda arg: rule_value(arg, values)  # noqa: E731
    if function == "Ref":
        return values[args]
    if function == "Fn::Equals":
        return ev(args[0]) == ev(args[1])
    if function == "Fn::Not":
        return not ev(args[0])
    if function == "Fn::And":
        return all(ev(arg) for arg in args)
    if function == "Fn::Or":
        return any(ev(arg) for arg in args)
    if function == "Fn::Contains":
        return ev(args[1]) in ev(args[0])
    if function == "Fn::EachMemberEquals":
        return all(member == ev(args[1]) for member in ev(args[0]))
    if function == "Fn::EachMemberIn":
        return all(member in ev(args[1]) for member in ev(args[0]))
    raise ValueError(f"cannot evaluate {function} in a rule")


def failing_rules(template, values):
    failing = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not rule_value(rule["RuleCondition"], values):
            continue
        if not all(rule_value(assertion["Assert"], values) for assertion in rule["Assertions"]):
            failing.append(name)
    return failing


def resolve(node, conditions):
    """`node` with every Fn::If decided and every AWS::NoValue gone, as CloudFormation sees it."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return resolve(when_true if conditions[name] else when_false, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        pairs = ((key, resolve(value, conditions)) for key, value in node.items())
        return {key: value for key, value in pairs if value is not NO_VALUE}
    if isinstance(node, list):
        return [item for item in (resolve(item, conditions) for item in node) if item is not NO_VALUE]
    return node


def created(template, conditions):
    """The resources and outputs created under `conditions`, resolved."""

    def kept(entries):
        return {n: resolve(e, conditions) for n, e in entries.items() if conditions.get(e.get("Condition"), True)}

    return kept(template["Resources"]), kept(template.get("Outputs", {}))


def names_used(node):
    """(function, name) for every resource or parameter `node` refers to."""
    if isinstance(node, list):
        for item in node:
            yield from names_used(item)
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "Ref":
            yield "Ref", value
        elif key == "Fn::GetAtt":
            yield "Fn::GetAtt", value.split(".")[0] if isinstance(value, str) else value[0]
        elif key == "Fn::Sub":
            text, local = (value, {}) if isinstance(value, str) else value
            for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                if name not in local:
                    yield "Fn::Sub", name if name.startswith("AWS::") else name.split(".")[0]
            yield from names_used(local)
        else:
            yield from names_used(value)


def dangling_references(resources, outputs, values):
    known = set(resources) | set(values)
    found = []
    for where, entry in [*(("Resources/" + n, r) for n, r in resources.items()),
                         *(("Outputs/" + n, o) for n, o in outputs.items())]:
        depends = entry.get("DependsOn", [])
        for name in [depends] if isinstance(depends, str) else depends:
            if name not in resources:
                found.append(f"{where} DependsOn {name}, which is not created")
        for function, name in names_used({k: v for k, v in entry.items() if k not in ("DependsOn", "Metadata")}):
            if name not in known:
                found.append(f"{where}: {function} {name}, which is neither a parameter nor a created resource")
    return found


def render(node, values, resources):
    """A string for `node`: parameters substituted, resources as `<Name>`, anything else as its JSON."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and set(node) == {"Ref"} and node["Ref"] in resources:
        return f"<{node['Ref']}>"
    try:
        return str(evaluate(node, {**{name: f"<{name}>" for name in resources}, **values}))
    except (ValueError, KeyError, TypeError, IndexError):
        return json.dumps(node, sort_keys=True)


def role_of(function):
    role = function["Properties"].get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        attribute = role["Fn::GetAtt"]
        return attribute.split(".")[0] if isinstance(attribute, str) else attribute[0]
    return None


def managed_policy_problems(resources, values):
    found = []
    functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    for name, role in resources.items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        arns = [render(arn, values, resources) for arn in role["Properties"].get("ManagedPolicyArns", [])]
        for arn in sorted({arn for arn in arns if arns.count(arn) > 1}):
            found.append(f"role {name} lists {arn} {arns.count(arn)} times; IAM refuses duplicate values")
        in_vpc = any(role_of(f) == name and f["Properties"].get("VpcConfig", {}).get("SubnetIds") for f in functions)
        if any(arn.endswith(VPC_ACCESS_POLICY) for arn in arns) and not in_vpc:
            found.append(f"role {name} has {VPC_ACCESS_POLICY[1:]}, but no function of it runs in a VPC")
    return found


def environment_problems(resources, values, list_parameters):
    found = []
    for name, function in resources.items():
        if function["Type"] != "AWS::Lambda::Function":
            continue
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        for variable, value in variables.items():
            problem = string_input_problem(value, resources, values, list_parameters)
            if problem:
                found.append(f"{name}: {variable} {problem}")
    return found


def string_input_problem(value, resources, values, list_parameters):
    """Why `value` is not a string made of inputs and created resources, or None."""
    if isinstance(value, (str, int, float, bool)):
        return None
    if not isinstance(value, dict) or len(value) != 1:
        return f"is {json.dumps(value)}, not a string"
    (function, args), = value.items()
    if function == "Ref":
        if args in list_parameters:
            return f"is the list parameter {args}, not a string"
        return None if args in values or args in resources else f"names {args}, which is not created"
    if function in ("Fn::GetAtt", "Fn::Sub", "Fn::Join", "Fn::Select"):
        missing = [n for _, n in names_used(value) if n not in values and n not in resources]
        return f"names {', '.join(missing)}, which is not created" if missing else None
    return f"is {json.dumps(value)}, which is neither a created resource nor an input"


def statements(node):
    """Every policy statement under `node`."""
    if isinstance(node, dict):
        if "Statement" in node:
            listed = node["Statement"]
            yield from listed if isinstance(listed, list) else [listed]
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item)


def wildcard_problems(resources):
    found = []
    for name, resource in resources.items():
        for statement in statements(resource.get("Properties", {})):
            granted = statement.get("Resource", [])
            if "*" in ([granted] if isinstance(granted, str) else granted):
                if (name, statement.get("Sid")) not in WILDCARD_RESOURCES:
                    found.append(f"{name}: statement {statement.get('Sid') or statement} grants on Resource '*'")
    return found


def route_keys(resources, api):
    """The route keys of the HTTP API `api`: its OpenAPI body's operations (SAM's HttpApi events) and the
    Route resources on it."""
    keys = set()
    for path, operations in resources[api]["Properties"].get("Body", {}).get("paths", {}).items():
        keys.update(f"{OPENAPI_METHODS[op]} {path}" for op in operations if op in OPENAPI_METHODS)
    for resource in resources.values():
        if resource["Type"] == "AWS::ApiGatewayV2::Route" and resource["Properties"].get("ApiId") == {"Ref": api}:
            keys.add(resource["Properties"]["RouteKey"])
    return keys


def route_setting_problems(resources):
    """Route settings (a route's own throttle) for a route the API does not have fail the stage."""
    found = []
    for name, stage in resources.items():
        if stage["Type"] != "AWS::ApiGatewayV2::Stage":
            continue
        api = stage["Properties"].get("ApiId", {}).get("Ref")
        if api not in resources:
            continue  # dangling_references names it
        known = route_keys(resources, api)
        for key in stage["Properties"].get("RouteSettings", {}):
            if key not in known:
                found.append(f"{name}: RouteSettings names {key}, which is not a route of {api} (API Gateway refuses "
                             f"the stage)")
    return found


def from_address_problems(resources, values):
    """Sending as an identity needs a ses:FromAddress condition naming MailFrom's bare address: SES compares
    that, without the display name."""
    expected = email.utils.parseaddr(values["MailFrom"])[1]
    found = []
    for name, resource in resources.items():
        for statement in statements(resource.get("Properties", {})):
            if "ses:SendEmail" not in json.dumps(statement.get("Action")) or ":identity/" not in json.dumps(
                    statement.get("Resource")):
                continue
            given = [op["ses:FromAddress"] for op in statement.get("Condition", {}).values() if "ses:FromAddress" in op]
            got = [render(value, values, resources) for value in given]
            if got != [expected]:
                found.append(f"{name}: sending as the identity needs ses:FromAddress {expected!r}, not {got}")
    return found


def check_configuration(template, params):
    """Every problem CloudFormation would meet deploying `template` with `params`."""
    values, problems = parameter_values(template, params)
    if problems:
        return problems
    translated = translate(template, params)
    misuse = rule_misuse(translated)
    problems += misuse or [f"the Rule {rule} refuses this configuration" for rule in failing_rules(translated, values)]
    conditions = condition_values(translated, values)
    resources, outputs = created(translated, conditions)
    list_parameters = {n for n, p in translated.get("Parameters", {}).items() if "List" in p["Type"]}
    problems += managed_policy_problems(resources, values)
    problems += dangling_references(resources, outputs, values)
    problems += environment_problems(resources, values, list_parameters)
    problems += wildcard_problems(resources)
    problems += route_setting_problems(resources)
    problems += from_address_problems(resources, values)
    return problems


def check_refusals(template):
    """Each contradictory configuration must be refused by the Rule written for it."""
    problems = []
    for name, given, rule in REFUSED:
        values, errors = parameter_values(template, {**REQUIRED, **given})
        misuse = rule_misuse(template)
        if errors or misuse:
            problems += [f"{name}: {problem}" for problem in errors + misuse]
            continue
        failing = failing_rules(template, values)
        if rule not in failing:
            problems.append(f"{name}: the Rule {rule} does not refuse it (refused by {failing or 'none'})")
    return problems


def main():
    logging.disable(logging.WARNING)
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
    template = yaml_parse(path.read_text())
    failed = 0
    for name, params in configurations():
        problems = check_configuration(template, params)
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'ok  '} {name}")
        for problem in problems:
            print(f"       {problem}")
    refusals = check_refusals(template)
    print(f"{'FAIL' if refusals else 'ok  '} contradictory configurations are refused by their Rules")
    for problem in refusals:
        print(f"       {problem}")
    failed += bool(refusals)
    print(f"{failed} failed" if failed else "every configuration deploys as far as these checks see")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
