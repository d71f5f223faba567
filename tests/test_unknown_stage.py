"""A stage that the ``stages`` settings do not name is refused by every entry point (synth, deploy and destroy
through the CDK app, preflight, smoke, the local stack): one line that names it and the stages there are, a
non-zero exit, and nothing built, called or started. Before this, ``make synth STAGE=prdo`` built
``SmsSender-prdo`` with every country allowed and no spend limit.

How the CDK CLI (the one pinned in package.json) hands the app its context: it merges ``-c key=value`` over
cdk.json's ``context`` key by key, and passes the result in ``CDK_CONTEXT_JSON`` (aws-cdk-lib's ``App`` reads
that, and a ``CONTEXT_OVERFLOW_LOCATION_ENV`` file for what does not fit). A ``-c`` value is always a string,
so ``-c stages={...}`` reaches the app as JSON text, and replaces cdk.json's ``stages`` as a whole.

Every test here stops before Chalice packages anything, so the module runs in seconds."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.config import StageConfig, StageConfigError, UnknownStage
from ops import preflight, smoke

from .synth import exclusive

ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = json.loads((ROOT / "cdk.json").read_text())
STAGES = ", ".join(sorted(CDK_JSON["context"]["stages"]))  # what the user sees listed: dev, prod

IN_CONTEXT = "is not in the stages context (context.stages of cdk.json, or -c stages=…); the stages are: "
IN_CDK_JSON = "is not in cdk.json (context.stages); the stages are: "
QUIET = {"CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "1", "AWS_DEFAULT_REGION": "us-east-1"}


def assert_refused_before_packaging(result: subprocess.CompletedProcess, message: str, workdir: Path,
                                    outdir: Path) -> None:
    """The run failed with ``message`` as a line of its own and no traceback, and built nothing: Chalice
    writes ./chalice.out and the app stages it into the cloud assembly as an asset while the stack is built."""
    assert result.returncode != 0
    assert message in result.stderr.splitlines(), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not (workdir / "chalice.out").exists()
    assert not [p.name for p in outdir.glob("*") if p.name.startswith("asset.") or p.name.endswith(".template.json")]


# The CDK app, run as the CDK CLI runs it (tests/synth.py): `make synth`, `make deploy`, `make destroy`.

def run_app(workdir: Path, context: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, **QUIET, "CDK_OUTDIR": str(workdir / "cdk.out"), "CDK_CONTEXT_JSON": json.dumps(context)}
    return subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_app_refuses_a_stage_cdk_json_does_not_name(tmp_path):
    """`make synth STAGE=prdo`: cdk.json's context with stage=prdo."""
    result = run_app(tmp_path, {**CDK_JSON["context"], "stage": "prdo"})
    assert_refused_before_packaging(result, f"stage 'prdo' {IN_CONTEXT}{STAGES}", tmp_path, tmp_path / "cdk.out")
    assert result.stderr.splitlines()[-1] == f"stage 'prdo' {IN_CONTEXT}{STAGES}"  # the last word is ours


def test_the_app_names_the_stages_a_context_value_gives(tmp_path):
    """Stages given in the context (as tests/synth.py gives MMS_STAGE or "staging") are the ones that exist."""
    result = run_app(tmp_path, {**CDK_JSON["context"], "stage": "stagign",
                                "stages": {"staging": {"accountSettings": False}}})
    assert_refused_before_packaging(result, f"stage 'stagign' {IN_CONTEXT}staging", tmp_path, tmp_path / "cdk.out")


def cdk_cli(tmp_path: Path, *context: str) -> subprocess.CompletedProcess:
    """What `make synth` runs: the pinned CLI in the repository (where cdk.json is), the app as cdk.json says."""
    cli = ROOT / "node_modules" / ".bin" / "cdk"
    assert cli.exists(), "run `npm ci` (make test does) to install the pinned CDK CLI"
    env = {k: v for k, v in os.environ.items() if k not in ("CDK_CONTEXT_JSON", "CDK_OUTDIR")}
    args = [a for pair in context for a in ("-c", pair)]
    return subprocess.run([str(cli), "synth", *args, "--app", f"{sys.executable} {ROOT / 'app.py'}",
                           "-o", str(tmp_path / "cdk.out"), "--quiet"],
                          cwd=ROOT, env={**env, **QUIET}, capture_output=True, text=True, timeout=300)


def test_make_synth_with_a_mistyped_stage_fails_with_the_stages_of_cdk_json(tmp_path):
    with exclusive("repo-chalice-out"):  # no synth of another test packages in the repo meanwhile
        result = cdk_cli(tmp_path, "stage=prdo")
        assert_refused_before_packaging(result, f"stage 'prdo' {IN_CONTEXT}{STAGES}", ROOT, tmp_path / "cdk.out")


def test_a_stages_value_given_with_c_is_read_as_json(tmp_path):
    """`-c stages={...}` arrives as a string and replaces cdk.json's stages: its stages are the ones listed."""
    with exclusive("repo-chalice-out"):
        result = cdk_cli(tmp_path, "stage=prod", 'stages={"qa": {}, "staging": {"accountSettings": false}}')
        assert_refused_before_packaging(result, f"stage 'prod' {IN_CONTEXT}qa, staging", ROOT, tmp_path / "cdk.out")


# StageConfig.from_context, the one place the app reads its stage (in process: no synth).

def from_context(**context) -> StageConfig:
    import aws_cdk as cdk

    return StageConfig.from_context(cdk.App(context=context).node)


def test_a_stage_given_only_as_c_json_text_is_built_with_its_settings():
    config = from_context(stage="qa", stages='{"qa": {"allowedCountries": ["US"], "monthlySpendLimitUsd": 5}}')
    assert (config.stage, config.allowed_countries, config.monthly_spend_limit_usd) == ("qa", ("US",), 5)


def test_the_default_stage_is_dev_and_must_exist_too():
    assert from_context(stages=CDK_JSON["context"]["stages"]).allowed_countries == ("US", "CA")
    with pytest.raises(UnknownStage) as refused:
        from_context()  # no stages at all: `python app.py` without the CDK CLI
    assert str(refused.value) == f"stage 'dev' {IN_CONTEXT}none"


@pytest.mark.parametrize("stages, complaint", [
    ('{"qa": {', r"^the stages in the stages context .* are not JSON: "),
    ('["qa"]', r"must be a JSON object of stage settings"),
    ('{"qa": "sns"}', r"must be a JSON object of stage settings"),
])
def test_stages_that_are_not_an_object_of_settings_are_refused(stages, complaint):
    with pytest.raises(StageConfigError, match=complaint):
        from_context(stage="qa", stages=stages)


# preflight and smoke read cdk.json themselves; an unknown stage stops them before any AWS call.

class NoAws:
    """A boto3 session that fails the test if anything asks it for a client or a region."""

    def client(self, *args, **kwargs):
        raise AssertionError("an AWS client was made for a stage that does not exist")

    @property
    def region_name(self):
        raise AssertionError("the region was read for a stage that does not exist")


@pytest.mark.parametrize("main, prog, argv", [
    (preflight.main, "python -m ops.preflight", ["--stage", "prdo"]),
    (smoke.main, "python -m ops.smoke", ["--stage", "prdo"]),
])
def test_preflight_and_smoke_refuse_a_stage_cdk_json_does_not_name(main, prog, argv, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # so the refusal, not the endpoint check, is what stops it
    out = io.StringIO()
    assert main(argv, session=NoAws(), out=out) == 2
    assert out.getvalue() == ""  # no check ran
    assert capsys.readouterr().err == f"{prog}: stage 'prdo' {IN_CDK_JSON}{STAGES}\n"


# The local stack (`make dev STAGE=prdo`).

def test_the_local_stack_refuses_a_stage_cdk_json_does_not_name(capsys):
    from devstack.__main__ import main

    with pytest.raises(SystemExit) as stopped:
        main(["--stage", "prdo"])
    assert stopped.value.code == f"make dev: stage 'prdo' {IN_CDK_JSON}{STAGES}"  # printed on stderr, exit 1
    assert "Sender running" not in capsys.readouterr().out
