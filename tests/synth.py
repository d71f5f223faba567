"""Synthesize the stack the way the CDK CLI does, once per stage per test session.

Every template a test reads comes from here, so each stage is synthesized once however many test
files look at it (``tests/conftest.py`` holds the session fixtures). Under pytest-xdist the modules that read
a template run on one worker, as one group (``tests/conftest.py``); the stages are still synthesized into a
folder all the workers of the session share (``SHARED``), under a file lock, by the first worker that needs
one, and any other reads the templates it wrote. It synthesizes every stage the session needs (``NEEDED``) at
once, in one Python process (``python -m tests.synth``): the process calls app.py's own ``synthesize`` for each
stage, with the stage's context and output folder, in the stage's folder (where Chalice writes, and app.py removes,
``chalice.out``). The CDK's JavaScript runtime starts once for all of them: a synth in a process of its own
spends most of its time starting it. (tests/test_offline_synth.py holds the session's dev template to the one
``python app.py`` writes.)

Synths run at the same time, but never while the session's first one builds the Lambda package:
Chalice writes its package cache (``app/.chalice/deployments/<hash>.zip``) in place, and a synth that
found it half written would reuse it. Once a synth has succeeded the package is there, and every
later synth only reads it."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from aws_cdk.assertions import Template

ROOT = Path(__file__).resolve().parent.parent

# An End User Messaging stage with every kind of identity the IAM grants must handle: a pool, a
# phone number id, a sender id, and a configuration set with a protect configuration. Its pool
# receives replies (two-way, with keywords); MMS_STAGE's phone number does too, on an SNS stage.
SMS_VOICE_STAGE = {
    "smsProvider": "sms-voice",
    "originationIdentity": "pool-0123456789abcdef0123456789abcdef",
    "senderId": "MyBrand",
    "allowedCountries": ["US", "CA", "GB", "DE"],
    "monthlySpendLimitUsd": 1,
    # Two-way (a pool can receive): an opt-in word, and a HELP answer of the stage's own.
    "keywords": [{"keyword": "START", "message": "MyBrand: you are subscribed again. Reply STOP to opt out.",
                  "action": "OPT_IN"},
                 {"keyword": "HELP", "message": "MyBrand support: help@example.com. Reply STOP to opt out."}],
}
MMS_STAGE = {
    "originationIdentity": "arn:aws:sms-voice:us-east-1:111122223333:phone-number/phone-abc",
    "allowedCountries": ["US", "CA"],
}
# The same number, with two-way turned off (for a country or Region without it).
ONE_WAY_STAGE = {**MMS_STAGE, "twoWay": False}
# An End User Messaging stage that names its phone number by the number, which IAM never authorizes a send against.
E164_STAGE = {"smsProvider": "sms-voice", "originationIdentity": "+12065550100", "allowedCountries": ["US"]}


# Each session fixture's stage: (stage name, its whole configuration, or None for cdk.json's).
STAGES = {
    "template": ("dev", None),  # the dev stage as cdk.json has it
    "prod_template": ("prod", None),
    "mms_template": ("dev", MMS_STAGE),
    "sms_voice_template": ("eum", SMS_VOICE_STAGE),
    "one_way_template": ("dev", ONE_WAY_STAGE),
    "second_stage": ("staging", {"accountSettings": False}),
    "e164_template": ("e164", E164_STAGE),  # may fail to synth (tests/test_iam_reference.py)
}

# Set by tests/conftest.py for the session: a folder every worker of the session shares (None: no
# sharing, no locks), and the session fixtures of STAGES some collected test reads.
SHARED: Path | None = None
NEEDED: set[str] = set()


@contextmanager
def exclusive(name: str) -> Iterator[None]:
    """Hold the session's lock ``name`` (a file lock in SHARED, across the workers). Without SHARED, lock nothing."""
    if SHARED is None:
        yield
        return
    with open(SHARED / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _package_built_first() -> Iterator[None]:
    """Until a synth of the session has succeeded (so Chalice's package cache is complete), one synth at a time."""
    if SHARED is None:
        yield
        return
    built = SHARED / "package.built"
    with exclusive("package"):
        if not built.exists():
            yield
            built.touch()
            return
    yield


def synth(workdir: Path, *context: str) -> Template:
    """Run ``python app.py`` as the CDK CLI would (cdk.json context plus ``key=value`` overrides,
    JSON values allowed), in ``workdir``; return the stack's template."""
    _run(workdir, *context)
    return _read(workdir, *context)


def _cdk_context(*context: str) -> dict:
    """cdk.json's context with the ``key=value`` overrides (JSON values allowed), as the CDK CLI hands it on."""
    overrides = {}
    for item in context:
        key, value = item.split("=", 1)
        overrides[key] = json.loads(value) if value.startswith("{") else value
    return {**json.loads((ROOT / "cdk.json").read_text())["context"], **overrides}


def _run(workdir: Path, *context: str) -> None:
    env = {**os.environ, "CDK_OUTDIR": str(workdir / "cdk.out"), "AWS_DEFAULT_REGION": "us-east-1",
           "CDK_CONTEXT_JSON": json.dumps(_cdk_context(*context))}
    with _package_built_first():
        subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=workdir, env=env, check=True,
                       capture_output=True, timeout=600)


def _read(workdir: Path, *context: str) -> Template:
    stage = dict(item.split("=", 1) for item in context).get("stage", "dev")
    template = json.loads((workdir / "cdk.out" / f"SmsSender-{stage}.template.json").read_text())
    return Template.from_json(template)


def _context(stage: str, settings: dict | None) -> tuple[str, ...]:
    if settings is None:
        return (f"stage={stage}",)
    return f"stage={stage}", "stages=" + json.dumps({stage: settings})


def synth_stage(workdir: Path, stage: str, settings: dict | None = None) -> Template:
    """One stage: as cdk.json has it, or with ``settings`` as its whole configuration."""
    return synth(workdir, *_context(stage, settings))


def shared_dir(fixture: str) -> Path:
    """Where the session fixture ``fixture`` (one of STAGES) is synthesized, its cloud assembly in ``cdk.out``."""
    assert SHARED is not None, "tests/conftest.py sets SHARED for the session"
    return SHARED / f"synth-{fixture}"


class SynthFailed(Exception):
    """A session stage's synth failed; the message holds what it printed."""


def _synthesize_together(fixtures: list[str]) -> None:
    """Synthesize the stages of ``fixtures`` in one process (``main``), each into its shared folder; a stage that
    fails leaves its error there instead (``error``), and the others are synthesized all the same."""
    jobs = [{"folder": str(shared_dir(fixture)), "context": _cdk_context(*_context(*STAGES[fixture]))}
            for fixture in fixtures]
    env = {name: value for name, value in os.environ.items() if name not in ("CDK_OUTDIR", "CDK_CONTEXT_JSON")}
    with _package_built_first():
        subprocess.run([sys.executable, "-m", "tests.synth", json.dumps(jobs)], cwd=ROOT,
                       env={**env, "AWS_DEFAULT_REGION": "us-east-1"}, check=True, capture_output=True, timeout=900)


def session_template(fixture: str) -> Template:
    """The template of session fixture ``fixture`` (one of STAGES), synthesized once for all the workers, together
    with every other stage the session needs and nobody has synthesized yet."""
    folder = shared_dir(fixture)
    with exclusive("session-synths"):
        pending = [name for name in sorted(NEEDED | {fixture})
                   if not (shared_dir(name) / "synthesized").exists() and not (shared_dir(name) / "error").exists()]
        if pending:
            _synthesize_together(pending)
    if (folder / "error").exists():
        raise SynthFailed(f"the synth of {fixture} failed:\n{(folder / 'error').read_text()}")
    return _read(folder, *_context(*STAGES[fixture]))


def main(jobs: list[dict]) -> None:
    """Each job's stage through app.py's ``synthesize``, in its folder, into its folder's ``cdk.out``; then
    ``synthesized`` in the folder, or ``error`` with what went wrong."""
    import importlib.util
    import traceback

    spec = importlib.util.spec_from_file_location("cdk_entry", ROOT / "app.py")  # `app` is the Chalice app's name
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    cdk = entry.cdk
    for job in jobs:
        folder = Path(job["folder"])
        folder.mkdir(parents=True, exist_ok=True)
        os.chdir(folder)
        try:
            entry.synthesize(cdk.App(outdir=str(folder / "cdk.out"), context=job["context"]))
        except SystemExit as refused:  # app.py's one line for a stage it refuses, what `python app.py` prints
            (folder / "error").write_text(f"{refused.code}")
        except Exception:
            (folder / "error").write_text(traceback.format_exc())
        else:
            (folder / "synthesized").touch()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(json.loads(sys.argv[1]))
