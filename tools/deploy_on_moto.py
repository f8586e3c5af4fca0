"""template.yaml, as SAM translates it, created as a stack on moto's CloudFormation in every configuration
tools/check_deployability.py covers, and what the stack made read back from moto's services.

check_deployability.py reasons about the translated template; this creates it. For each configuration it
creates the inputs a merchant would have (a VPC with two subnets in two zones, a route table and a security
group; the given secrets), creates the stack, and checks that:

- the stack reaches CREATE_COMPLETE;
- of the resource types moto creates, the stack holds exactly the resources the configuration's conditions
  keep (check_deployability's resolver and moto's agree);
- each function runs provided.al2023 `bootstrap`, has the translated template's environment variable names
  with every value resolved, the VPC's subnets only in a VPC, and the reserved concurrency the parameters
  ask for where they cap it;
- each function's role exists in IAM with the inline policies the template gives it;
- the two tables are keyed on `pk`;
- the rule on the stack's own bus matches both detail-types and targets the notifier, with the dead-letter
  queue the stack made;
- the token key exists, with rotation on, exactly when sealing.

What moto does not emulate, and check_deployability.py alone checks (the README's Deployment section says
the same):
- resource types it skips without creating them (it logs "No Moto CloudFormation support for ..."): API
  Gateway v2 (the HTTP API, its stage and routes), alarms, metric filters and EventInvokeConfig;
- a role's ManagedPolicyArns, and a table's TimeToLiveSpecification: ignored;
- Ref of a Number parameter: a number, where CloudFormation gives a string, so a condition comparing it with
  a string is false; a configuration with no cap (-1) gets a reserved concurrency of -1 on moto;
- Ref of an event bus: no name (the template names the bus with !GetAtt .Name, which CloudFormation gives
  the same).

Usage: .venv/sam/bin/python tools/deploy_on_moto.py ENDPOINT [TEMPLATE]   (moto's server, e.g. MOTO_ENDPOINT)
Prints one line per configuration; exits 1 when any check fails.
"""

import io
import json
import logging
import sys
import time
import uuid
import zipfile
from pathlib import Path

import boto3
from botocore.config import Config
from samtranslator.yaml_helper import yaml_parse

sys.path.insert(0, str(Path(__file__).parent))
import check_deployability as plan  # noqa: E402

# Each run its own bucket: runs may share one moto.
CODE = (f"deploy-on-moto-{uuid.uuid4().hex[:12]}", "bootstrap.zip")
BOTH_DETAIL_TYPES = {"auth.password_reset", "auth.password_updated"}


def clients(endpoint):
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=plan.PSEUDO["AWS::Region"])
    # One attempt: an error is moto's answer, not a fault to ride out.
    once = Config(retries={"max_attempts": 1, "mode": "standard"})
    return lambda service: session.client(service, endpoint_url=endpoint, config=once)


def merchant_inputs(client):
    """What a merchant has before deploying, made in moto: the bucket `sam package` uploads to, a VPC, its
    subnets in two zones, a route table and a security group. Returns the parameter values that name them."""
    s3 = client("s3")
    s3.create_bucket(Bucket=CODE[0])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("bootstrap", "")
    s3.put_object(Bucket=CODE[0], Key=CODE[1], Body=archive.getvalue())
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
        for i, zone in enumerate("ab")
    ]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName="reset", Description="reset")["GroupId"]
    return {"vpc-0a": vpc, "subnet-0a": subnets[0], "subnet-0b": subnets[1], "rtb-0a": table, "sg-0a": group,
            "10.0.0.0/16": "10.40.0.0/16"}


def with_merchant_inputs(params, inputs):
    """`params` with the placeholder network IDs replaced by the ones made in moto."""
    return {name: ",".join(inputs.get(part, part) for part in value.split(",")) for name, value in params.items()}


def translated_for_moto(template, params):
    """The translated template, its code where merchant_inputs uploaded it."""
    translated = plan.translate(template, params)
    for resource in translated["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            resource["Properties"]["Code"] = {"S3Bucket": CODE[0], "S3Key": CODE[1]}
    return translated


def create_stack(client, translated, params):
    """Creates the stack and waits for it; returns its name and final description."""
    cfn = client("cloudformation")
    name = f"reset-{uuid.uuid4().hex[:12]}"
    cfn.create_stack(
        StackName=name, TemplateBody=json.dumps(translated),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"])
    deadline = time.monotonic() + 60
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return name, stack
        time.sleep(0.1)


def resource_problems(client, stack, expected):
    """The stack's resources of the types moto creates against those the conditions keep."""
    summaries = client("cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]
    # moto lists a resource it skipped with no ID and no type.
    made = {s["LogicalResourceId"]: s for s in summaries if s.get("ResourceType")}
    kinds = {s["ResourceType"] for s in made.values()}
    wanted = {name for name, resource in expected.items() if resource["Type"] in kinds}
    problems = [f"{name} ({expected[name]['Type']}) was not created" for name in sorted(wanted - set(made))]
    problems += [f"{name} was created, though the configuration's conditions leave it out"
                 for name in sorted(set(made) - set(expected))]
    return problems, made


def function_problems(client, name, resource, role_resource, physical, values, skipped, inputs):
    """One function as Lambda holds it against its translated definition."""
    lam, iam = client("lambda"), client("iam")
    config = lam.get_function_configuration(FunctionName=physical)
    properties, problems = resource["Properties"], []
    if (config.get("Runtime"), config.get("Handler")) != ("provided.al2023", "bootstrap"):
        problems.append(f"{name} runs {config.get('Runtime')} {config.get('Handler')}")
    variables = config.get("Environment", {}).get("Variables", {})
    # A variable naming a resource moto skipped (the stack-made secret) is dropped there.
    wanted = {variable for variable, value in properties.get("Environment", {}).get("Variables", {}).items()
              if not any(used in skipped for _, used in plan.names_used(value))}
    if set(variables) != wanted:
        problems.append(f"{name}'s environment differs: missing {sorted(wanted - set(variables))}, "
                        f"extra {sorted(set(variables) - wanted)}")
    # A Number parameter's Ref is a number on moto (a string in CloudFormation).
    unresolved = [k for k, v in variables.items() if not isinstance(v, (str, int)) or "Fn::" in str(v)]
    problems += [f"{name}'s {variable} is not resolved: {variables[variable]!r}" for variable in unresolved]
    subnets = sorted(config.get("VpcConfig", {}).get("SubnetIds", []))
    in_vpc = "VpcConfig" in properties
    wanted_subnets = sorted(inputs[s] for s in ("subnet-0a", "subnet-0b") if inputs[s] in values["VpcSubnetIds"])
    if subnets != (wanted_subnets if in_vpc else []):
        problems.append(f"{name} is in subnets {subnets}, not {wanted_subnets if in_vpc else 'none'}")
    cap = properties.get("ReservedConcurrentExecutions")
    if cap is not None:
        wanted_cap = int(values[cap["Ref"]]) if isinstance(cap, dict) else cap
        reserved = lam.get_function_concurrency(FunctionName=physical).get("ReservedConcurrentExecutions")
        if reserved != wanted_cap:
            problems.append(f"{name} reserves {reserved}, not {wanted_cap}")
    role = config["Role"].rsplit("/", 1)[-1]
    inline = set(iam.list_role_policies(RoleName=role)["PolicyNames"])
    wanted_inline = {policy["PolicyName"] for policy in role_resource["Properties"].get("Policies", [])}
    if inline != wanted_inline:
        problems.append(f"{name}'s role {role} has the inline policies {sorted(inline)}, not {sorted(wanted_inline)}")
    return problems


def table_problems(client, physical):
    dynamodb = client("dynamodb")
    problems = []
    for name, table in physical.items():
        keys = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
        if keys != [{"AttributeName": "pk", "KeyType": "HASH"}]:
            problems.append(f"{name} is keyed on {keys}")
    return problems


def rule_problems(client, stack, made):
    """The notifier's rule: on the stack's bus, both detail-types, the notifier its target, the queue its DLQ."""
    events = client("events")
    bus = f"{stack}-auth"  # the bus's Name; moto gives the bus no physical ID
    rule = events.describe_rule(Name=made["NotifierFunctionPasswordReset"]["PhysicalResourceId"], EventBusName=bus)
    problems = []
    detail_types = set(json.loads(rule["EventPattern"]).get("detail-type", []))
    if detail_types != BOTH_DETAIL_TYPES:
        problems.append(f"the rule matches {sorted(detail_types)}")
    targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
    notifier = made["NotifierFunction"]["PhysicalResourceId"]
    notifier = client("lambda").get_function_configuration(FunctionName=notifier)["FunctionArn"]
    queue = client("sqs").get_queue_attributes(
        QueueUrl=made["NotifierDeadLetterQueue"]["PhysicalResourceId"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if [(t["Arn"], t.get("DeadLetterConfig", {}).get("Arn")) for t in targets] != [(notifier, queue)]:
        problems.append(f"the rule's targets are {targets}, not the notifier with the dead-letter queue")
    return problems


def key_problems(client, made, sealed):
    if ("TokenKey" in made) != sealed:
        return [f"the token key {'is missing' if sealed else 'exists'} with SealTokenWithKms={str(sealed).lower()}"]
    key = made.get("TokenKey", {}).get("PhysicalResourceId")
    if sealed and not client("kms").get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]:
        return ["the token key's rotation is off"]
    return []


def check_configuration(client, template, params, inputs):
    params = with_merchant_inputs(params, inputs)
    values, problems = plan.parameter_values(template, params)
    if problems:
        return problems
    translated = translated_for_moto(template, params)
    resources, _ = plan.created(translated, plan.condition_values(translated, values))
    stack, description = create_stack(client, translated, params)
    if description["StackStatus"] != "CREATE_COMPLETE":
        return [f"the stack is {description['StackStatus']}: {description.get('StackStatusReason')}"]
    problems, made = resource_problems(client, stack, resources)
    skipped = set(resources) - set(made)
    for name in ("ResetPasswordFunction", "NotifierFunction"):
        physical, role = made[name]["PhysicalResourceId"], resources[f"{name}Role"]
        problems += function_problems(client, name, resources[name], role, physical, values, skipped, inputs)
    problems += table_problems(client, {n: made[n]["PhysicalResourceId"] for n in ("RateLimitTable", "IdempotencyTable")})
    problems += rule_problems(client, stack, made)
    problems += key_problems(client, made, params["SealTokenWithKms"] == "true")
    return problems


def main():
    logging.disable(logging.WARNING)
    client = clients(sys.argv[1])
    template = yaml_parse(Path(sys.argv[2] if len(sys.argv) > 2 else "template.yaml").read_text())
    inputs = merchant_inputs(client)
    failed = 0
    for name, params in plan.configurations():
        try:
            problems = check_configuration(client, template, params, inputs)
        except Exception as error:  # an API error is this configuration's failure, not the run's
            problems = [f"{type(error).__name__}: {error}"]
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'ok  '} {name}")
        for problem in problems:
            print(f"       {problem}")
    print(f"{failed} failed" if failed else "every configuration was created on moto as the template says")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
