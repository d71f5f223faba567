#!/usr/bin/env python3
"""CDK entry point (cdk.json: "app": "python3 app.py"). Choose a stage with ``-c stage=NAME``."""
import os
import shutil
import sys

import aws_cdk as cdk

from infra.config import StageConfig
from infra.stack import SenderStack


def build(app: cdk.App) -> SenderStack:
    config = StageConfig.from_context(app.node)
    return SenderStack(app, f"SmsSender-{config.stage}", config=config, env=cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")))


def main() -> None:
    # `python app.py -c stage=prod` works without the CDK CLI, as `make synth` uses it.
    args = sys.argv[1:]
    context = {}
    while len(args) >= 2 and args[0] in ("-c", "--context"):
        key, _, value = args[1].partition("=")
        context[key] = value
        args = args[2:]
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("CDK_DEFAULT_REGION", "us-east-1"))
    app = cdk.App(context=context or None)
    build(app)
    try:
        app.synth()
    finally:
        # Chalice packages into ./chalice.out on every synth; the cloud assembly has its own copy.
        shutil.rmtree("chalice.out", ignore_errors=True)


if __name__ == "__main__":
    main()
