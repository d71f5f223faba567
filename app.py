#!/usr/bin/env python3
"""CDK entry point (cdk.json: "app": "python3 app.py"). Choose a stage with ``-c stage=NAME``: one of the
``stages`` context (cdk.json's, or a ``-c stages=…``); any other is refused before anything is packaged."""
import os
import shutil
import sys

# The machine's Node.js (Debian's nodejs, 20) works with jsii; its end-of-life banner is a dozen lines of noise on
# every synth. jsii silences the banner of a deprecated Node for any value, and that of an end-of-life one (Node 20
# since 2026-10-30) only for the major versions listed.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402

from infra import nag  # noqa: E402
from infra.config import StageConfig, StageConfigError, stack_name  # noqa: E402
from infra.runtime import PackagingError  # noqa: E402
from infra.stack import SenderStack  # noqa: E402


def build(app: cdk.App) -> SenderStack:
    config = StageConfig.from_context(app.node)
    return SenderStack(app, stack_name(config.stage), config=config, env=cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
        # A concrete region: the media bucket must sit in the origination identity's region.
        region=os.environ.get("CDK_DEFAULT_REGION") or os.environ["AWS_DEFAULT_REGION"]))


def synthesize(app: cdk.App) -> None:
    """Build the stage ``app``'s context names, check it with cdk-nag, and write its cloud assembly."""
    try:
        try:
            build(app)  # packages the Chalice app (infra/runtime.py)
        except (StageConfigError, PackagingError) as err:  # one line that says what to fix, not a traceback
            sys.exit(f"{err}")
        nag.add_checks(app)  # an unacknowledged cdk-nag finding fails the synth
        app.synth()
    finally:
        # Chalice packages into ./chalice.out on every synth; the cloud assembly has its own copy.
        shutil.rmtree("chalice.out", ignore_errors=True)


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("CDK_DEFAULT_REGION", "us-east-1"))
    synthesize(cdk.App())


if __name__ == "__main__":
    main()
