"""cdk-nag (3.x) AwsSolutions checks: the plugin, acknowledgments one finding at a time, and the same
checks on the template after the SAM transform, which cdk-nag cannot see into on its own."""
from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

PACK = "AwsSolutions"


def add_checks(app: cdk.App) -> None:
    """Fail the synth on any unacknowledged finding; write acknowledgments into each resource's
    Metadata (``cdk_nag.rules_to_suppress``) so reviewers can audit them in the template."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))


def acknowledge(scope, finding: str, reason: str) -> None:
    """Acknowledge exactly one finding (``AwsSolutions-IAM5[Resource::*]``) on one construct."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{PACK}::{finding}", reason=reason))


def resource(scope, value: str) -> str:
    """A resource ARN as cdk-nag names it in a finding (``Resource::<that>``): references to
    pseudo parameters and attributes written as ``<AWS::AccountId>`` and ``<LogicalId.Arn>``."""
    resolved = cdk.Stack.of(scope).resolve(value)
    if isinstance(resolved, str):
        return resolved

    def part(piece):
        if isinstance(piece, str):
            return piece
        if "Ref" in piece:
            return f"<{piece['Ref']}>"
        return "<{}.{}>".format(*piece["Fn::GetAtt"])

    return "".join(part(p) for p in resolved["Fn::Join"][1]) if "Fn::Join" in resolved else part(resolved)


def expand(template: dict, region: str = "us-east-1") -> dict:
    """The template after the SAM transform, expanded locally with aws-sam-translator (no AWS calls:
    the app's functions use no SAM managed-policy names, so the policy map can stay empty)."""
    import os

    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self):
            return {}

    old = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        return transform(json.loads(json.dumps(template)), {}, NoManagedPolicies())
    finally:
        if old is None:
            os.environ.pop("AWS_DEFAULT_REGION")
        else:
            os.environ["AWS_DEFAULT_REGION"] = old


def acknowledged(cdk_template: dict, resource_id: str, resource: dict) -> list[dict]:
    """The acknowledgments recorded in a resource's Metadata. A resource the SAM transform made
    carries those of the ``AWS::Serverless::*`` resource it came from (its id starts with that id)."""
    def recorded(res):
        return res.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])

    sources = [name for name, res in cdk_template["Resources"].items()
               if res["Type"].startswith("AWS::Serverless::") and resource_id.startswith(name)]
    return recorded(resource) or (recorded(cdk_template["Resources"][max(sources, key=len)]) if sources else [])


def check_expanded(cdk_template: dict, outdir: str) -> list[dict]:
    """Run the AwsSolutions checks on the template after the SAM transform (through ``CfnInclude``),
    with every acknowledgment the CDK template records. Returns the unacknowledged violations."""
    from aws_cdk import cloudformation_include as cfn_inc

    expanded = expand(cdk_template)
    path = Path(outdir) / "expanded.template.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(expanded))
    app = cdk.App(outdir=str(Path(outdir) / "cdk.out"))
    # A bare synthesizer: the included template brings its own BootstrapVersion parameter.
    stack = cdk.Stack(app, "Expanded", synthesizer=cdk.LegacyStackSynthesizer())
    include = cfn_inc.CfnInclude(stack, "Template", template_file=str(path))
    for resource_id, resource in expanded["Resources"].items():
        for ack in acknowledged(cdk_template, resource_id, resource):
            cdk.Validations.of(include.get_resource(resource_id)).acknowledge(
                cdk.Acknowledgment(id=ack["id"], reason=ack["reason"]))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    try:
        app.synth()
    except RuntimeError as err:
        if "ValidationFailed" not in str(err):  # the report below says what failed
            raise
    report = json.loads((Path(outdir) / "cdk.out" / "validation-report.json").read_text())
    return [{"rule": v["ruleName"], "resources": [c["constructPath"] for c in v["violatingConstructs"]]}
            for plugin in report["pluginReports"] for v in plugin["violations"]]
