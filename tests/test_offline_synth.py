"""A synth with no network: the first one (Chalice has no package for this app and its requirements yet, pip must
download the Lambda wheels) fails with one line naming the package index pip could not reach and what to do, never
a traceback; once the package is built, a synth of the same app/ needs no network at all.

Nothing leaves the machine: pip's configuration files are off (``PIP_CONFIG_FILE`` set to ``os.devnull``, as
pip's configuration docs say), every other ``PIP_*`` and proxy variable is dropped, and the index is a loopback
port nobody listens on (``http://127.0.0.1:9/simple``) or none at all (``PIP_NO_INDEX``). pip's HTTP cache is a
new empty folder, and the synth runs on a copy of the project without Chalice's package cache
(``app/.chalice/deployments/``), so the first case really downloads."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = "http://127.0.0.1:9/simple"  # the discard port: nothing listens, the connection is refused


def project_copy(tmp_path: Path, *, package_cache: Path | None = None) -> Path:
    """What ``python app.py`` reads (the CDK entry point, infra/, the Chalice app, cdk.json), without
    Chalice's package cache, or with ``package_cache`` as it."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("app.py", "apppath.py", "cdk.json"):
        shutil.copy2(ROOT / name, copy / name)
    skip = shutil.ignore_patterns("__pycache__", "deployments", "deployed")
    for name in ("infra", "app"):
        shutil.copytree(ROOT / name, copy / name, ignore=skip)
    if package_cache is not None:
        shutil.copytree(package_cache, copy / "app" / ".chalice" / "deployments")
    return copy


def offline_synth(project: Path, tmp_path: Path, **pip: str) -> subprocess.CompletedProcess:
    """``python app.py`` as the CDK CLI runs it (``tests/synth.py``), with pip on ``pip`` alone, and Python
    writing bytecode as it does by default."""
    keep = {name: value for name, value in os.environ.items()
            if not name.upper().startswith("PIP_") and name.lower() not in {
                "http_proxy", "https_proxy", "all_proxy", "no_proxy", "pythondontwritebytecode"}}
    (tmp_path / "pip-cache").mkdir()
    env = {**keep, "PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": str(tmp_path / "pip-cache"), **pip,
           "CDK_OUTDIR": str(tmp_path / "cdk.out"), "AWS_DEFAULT_REGION": "us-east-1",
           "CDK_CONTEXT_JSON": json.dumps({**json.loads((ROOT / "cdk.json").read_text())["context"], "stage": "dev"})}
    return subprocess.run([sys.executable, "app.py"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_first_synth_offline_fails_with_one_line_naming_the_index(tmp_path):
    project = project_copy(tmp_path)
    done = offline_synth(project, tmp_path, PIP_INDEX_URL=UNREACHABLE)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert UNREACHABLE in lines[0] and "could not be reached" in lines[0]
    assert "connect to the network and synth again" in lines[0] and "app/.chalice/deployments/" in lines[0]
    assert not (project / "chalice.out").exists()  # nothing left behind in the project


def test_a_requirement_no_index_has_is_one_line_too_and_does_not_blame_the_network(tmp_path):
    project = project_copy(tmp_path)
    (tmp_path / "no-wheels").mkdir()
    done = offline_synth(project, tmp_path, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path / "no-wheels"))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    pins = [line.split("#")[0].strip() for line in (ROOT / "app" / "requirements.txt").read_text().splitlines()]
    assert "No matching distribution found for" in lines[0], lines[0]
    assert any(pin and lines[0].endswith(pin) for pin in pins), lines[0]  # pip's own words, naming the pin
    assert "could not be reached" not in lines[0]


def test_once_the_package_is_built_a_synth_needs_no_network(template, tmp_path):
    """``template`` (the session's dev synth) has built the package into app/.chalice/deployments/; the
    first test's advice holds: with that cache a synth against an unreachable index succeeds. Also after
    ``make dev`` or the tests have left bytecode in app/ (Chalice would key the package on it, and zip it)."""
    cache = ROOT / "app" / ".chalice" / "deployments"
    assert any(cache.glob("*.zip")), "the session's synth left no package"
    project = project_copy(tmp_path, package_cache=cache)
    left_behind = project / "app" / "chalicelib" / "core" / "__pycache__"
    left_behind.mkdir()
    (left_behind / "web.cpython-311.pyc").write_bytes(b"bytecode make dev wrote")
    done = offline_synth(project, tmp_path, PIP_INDEX_URL=UNREACHABLE)
    assert done.returncode == 0, done.stderr[-3000:]
    written = json.loads((tmp_path / "cdk.out" / "SmsSender-dev.template.json").read_text())
    assert written == template.to_json()  # the session's synth (tests/synth.py) writes what `python app.py` does
    assert "Traceback" not in done.stderr
    (package,) = [path for path in (tmp_path / "cdk.out").glob("asset.*.zip")
                  if "app.py" in zipfile.ZipFile(path).namelist()]
    assert not [name for name in zipfile.ZipFile(package).namelist() if name.endswith(".pyc")]  # none shipped
