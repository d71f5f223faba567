"""Cold import of every function the stack deploys, each beside bare boto3 with the same clients.

A Lambda function's cold start imports its handler module (``app/app.py``, shared by all
the functions), then, on its first event, what that function runs; and it makes its AWS clients. This
bench times exactly that in a fresh process per run: ``import app``, the modules the function's own
code imports (read from ``app/app.py`` with ``ast``: the imports inside the Lambda function, and for
the API those of ``POST /sms``, the route every user calls first), and the function's clients made
through ``chalicelib.core.aws``. The baseline, in the same run, is ``import boto3`` and the same
clients made bare.

As on Lambda, the app's own code has no bytecode cache: it runs from a fresh copy of ``app/`` with
``PYTHONDONTWRITEBYTECODE``, so each run compiles it, as each cold start does (a deployment package
holds sources only). So does Chalice's router (``chalice/app.py``), which its package holds as source.
boto3, botocore and the bundled libraries run from the venv, compiled.

Each pair of runs (the app's and the baseline's) runs its code at its own depth of Python's call stack, the
same for both sides, the pairs' depths spread over one chunk of CPython's frame stack (``_at_depth``). CPython
3.11 keeps that stack in 16 KiB chunks and frees a chunk as soon as the call that needed it returns, so a
recursion that goes back and forth across a chunk's end maps and unmaps memory on every call (CPython issue
gh-142183, fixed in March 2026 for 3.14 and 3.13 by keeping one spare chunk). An import compiles regular
expressions with re's recursive parser (urllib3's URL patterns, under boto3). At the depth this bench used to
run at, the app's run crossed a chunk's end some 6,000 times (``strace -c``: 6,119 munmap, against 597 with
the same import started a few frames shallower), about 25 ms; at other depths the baseline's run does. The
runtime the stack deploys (``python3.14``) has the fix, so a row run at one fixed depth would judge where
this Python's chunks happen to end, not the code.
"""
from __future__ import annotations

import ast
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app" / "app.py"
TARGET = 1.10
ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    "MEDIA_BUCKET": "bench-media", "MESSAGES_TABLE": "bench-messages", "IDEMPOTENCY_TABLE": "bench-idem",
    "POWERTOOLS_LOG_LEVEL": "WARNING", "PYTHONDONTWRITEBYTECODE": "1",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",  # set on Lambda: app.py pauses the collector for the cold start
}
# Each function: its Chalice name (the stack sets APP_FUNCTION to it on every function but the API, whose
# module import registers every route), and the AWS clients it makes (the services its role is granted;
# tests/test_*_stack.py record each function's calls).
FUNCTIONS = {
    "api": ("api_handler", ("dynamodb", "sns", "s3", "pinpoint-sms-voice-v2", "sqs", "kms")),
    "batch worker": ("batch_worker", ("dynamodb", "sns", "s3", "pinpoint-sms-voice-v2", "sqs")),
    "status ingest": ("status_ingest", ("dynamodb",)),
    "webhook fanout": ("webhook_fanout", ("dynamodb", "sqs")),
    "webhook delivery": ("webhook_delivery", ("dynamodb", "sqs", "kms")),
    "inbound replies": ("inbound_reply", ("dynamodb",)),
    "report tally": ("report_tally", ("dynamodb",)),
    "export writer": ("export_writer", ("dynamodb", "s3", "sqs")),
    "schedule sweep": ("schedule_sweep", ("dynamodb", "sqs")),
    # Its handler is its own module (the stack sets chalicelib.keys.authorizer.handler), not app.py.
    "key authorizer": ("bearer", ("dynamodb",)),
}
HANDLER_MODULES = {"bearer": "chalicelib.keys.authorizer"}
# How many frames of ``_at_depth``'s padding fill one 16 KiB chunk of CPython 3.11's frame stack: a run's
# munmap count (``strace -c``) repeats every 120 frames of padding. The pairs' depths spread over one chunk.
CHUNK_FRAMES = 120
# The API's routes load their services on their first call. This row adds to the API's cold import what
# POST /sms loads on its first call (the imports inside ``_send``: the send path, the phone number library), so
# the cold start of a send stays in view. Its target is the one the API's whole cold import had before.
SEND_ROUTES = ROOT / "app" / "chalicelib" / "sending" / "routes.py"
FIRST_SEND = ("cold import api + first send", "_send", "chalicelib.sending", 1.25)


def imports_in(function: str, source: Path = APP, package: str = "") -> list[str]:
    """The chalicelib modules the function of this name imports inside its body in ``source`` (``app.py``: a
    Lambda function by its Chalice name; none for the API, whose module import registers its routes), in order.
    ``package``: the package of ``source``, for its relative imports."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found: list[str] = []
    defined = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    if source == APP and (function == "api_handler" or function in HANDLER_MODULES):
        return found
    if function not in defined:
        raise LookupError(f"{source.name} has no function {function!r}")
    for node in ast.walk(defined[function]):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = package.rsplit(".", node.level - 1)[0] if node.level else ""  # one level up per extra dot
        within = ".".join(part for part in (base, node.module) if part)
        if not within.startswith("chalicelib"):
            continue
        for alias in node.names:  # ``from pkg import module``, or ``from module import name``
            module = f"{within}.{alias.name}"
            path = ROOT / "app" / module.replace(".", "/")
            module = module if path.with_suffix(".py").exists() or path.is_dir() else within
            if module not in found:
                found.append(module)
    return found


def _app_code(app_dir: Path, modules: list[str], clients: tuple[str, ...], handler: str = "app") -> str:
    return f"""
import importlib, sys, time
t = time.perf_counter()
sys.path.insert(0, {str(app_dir)!r})  # as Lambda does: the package root holds app.py, the handler app.<function>
importlib.import_module({handler!r})
for name in {modules!r}:
    importlib.import_module(name)
from chalicelib.core import aws
for name in {clients!r}:
    aws.client(name)
print(time.perf_counter() - t)
"""


def _bare_code(clients: tuple[str, ...]) -> str:
    return f"""
import time
t = time.perf_counter()
import boto3
from botocore.config import Config
session = boto3.session.Session()
for name in {clients!r}:
    session.client(name, config=Config(retries={{"mode": "standard", "total_max_attempts": 3}}))
print(time.perf_counter() - t)
"""


def _at_depth(code: str, depth: int) -> str:
    """``code``, run with ``depth`` more frames under it on Python's call stack (see the module's docstring)."""
    return (f"def pad(n):\n    if n:\n        return pad(n - 1)\n"
            f"    exec(compile({code!r}, '<cold start>', 'exec'), {{'__name__': '__main__'}})\n"
            f"pad({depth})\n")


def depths(runs: int) -> list[int]:
    """The call-stack depths of ``runs`` pairs: spread evenly over one chunk of the frame stack."""
    return [pair * CHUNK_FRAMES // runs for pair in range(runs)]


def _once(code: str, function: str | None = None) -> float:
    env = {**{k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "APP_FUNCTION")}, **ENV}
    if function and function != "api_handler":
        env["APP_FUNCTION"] = function
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _as_packaged(app_dir: Path) -> None:
    """Chalice's package holds its own ``chalice/__init__.py`` and ``chalice/app.py`` beside ``app.py``, as
    sources (its packager's ``_iter_app_filenames``): on Lambda a function that imports Chalice compiles
    those 2,300 lines on every cold start too, so here they load from the copy, uncompiled, not from the venv."""
    import chalice
    import chalice.app

    (app_dir / "chalice").mkdir()
    for module in (chalice, chalice.app):
        source = Path(module.__file__)
        shutil.copyfile(source, app_dir / "chalice" / source.name)


def _medians(app_code: str, bare_code: str, function: str, runs: int) -> tuple[float, float, float]:
    """``runs`` pairs of fresh-process runs, the app's code and the baseline's side by side, each first in turn,
    each pair at its own depth of the call stack (``depths``): the medians (ms) of each, and the median of the
    pairs' ratios. A cold start's time drifts with the machine by more than the ratio's margin from one second to
    the next (the same baseline's median moved by 8% between two rows of one run); within a pair both meet the
    same drift."""
    ours, bare, ratios = [], [], []
    for pair, depth in enumerate(depths(runs)):
        app_run, bare_run = _at_depth(app_code, depth), _at_depth(bare_code, depth)
        if pair % 2:
            app, base = _once(app_run, function), _once(bare_run)
        else:
            base = _once(bare_run)
            app = _once(app_run, function)
        ours.append(app)
        bare.append(base)
        ratios.append(app / base)
    return statistics.median(ours) * 1e3, statistics.median(bare) * 1e3, statistics.median(ratios)


def rows(runs: int = 9) -> list[tuple[str, float, float, float, float]]:
    """(row name, app ms, baseline ms, ratio, target) per function, and the API's first send, from ``runs``
    pairs (``_medians``)."""
    found = []
    with tempfile.TemporaryDirectory() as scratch:
        app_dir = Path(scratch) / "app"
        shutil.copytree(ROOT / "app", app_dir, ignore=shutil.ignore_patterns("__pycache__", ".chalice"))
        _as_packaged(app_dir)
        for function, (name, clients) in FUNCTIONS.items():
            app_code = _app_code(app_dir, imports_in(name), clients, HANDLER_MODULES.get(name, "app"))
            found.append((f"cold import {function}", *_medians(app_code, _bare_code(clients), name, runs), TARGET))
            if function == "api":
                label, view, package, target = FIRST_SEND
                first_send = _app_code(app_dir, imports_in(view, SEND_ROUTES, package), clients)
                found.append((label, *_medians(first_send, _bare_code(clients), name, runs), target))
    return found


if __name__ == "__main__":
    for name, ours, bare, ratio, target in rows():
        print(f"{name:<30}{ours:>10.1f}{bare:>10.1f}{ratio:>8.2f}")
