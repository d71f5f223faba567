"""What each Lambda function loads when it starts cold (``app/app.py``): only the API's loads Chalice and
registers the routes, whose services load on their first call; the other functions load nothing of the HTTP
edge; and on Lambda the garbage collector waits for the first event. ``make bench`` times the cold starts;
these tests pin what they rest on."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parent.parent / "app"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "MEDIA_BUCKET": "b", "MESSAGES_TABLE": "m", "IDEMPOTENCY_TABLE": "i"}

PROBE = """
import gc, json, sys
sys.path.insert(0, {app_dir!r})
import app
after_import = gc.isenabled()
loaded = sorted(m for m in sys.modules if m.startswith(("chalicelib", "chalice", "phonenumbers")))
routes = sorted(app.app.routes) if hasattr(app, "app") else []
event = {event}
if event is not None:
    getattr(app, {function!r})(event, None)
print(json.dumps({{"gc_after_import": after_import, "gc_after_event": gc.isenabled(), "loaded": loaded,
                  "routes": routes}}))
"""


def run_json(code: str, env: dict) -> dict | list:
    """Run ``code`` in a fresh Python with ``env``; what it printed last, as JSON."""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def probe(function: str | None = None, *, event=None, lambda_env: bool = True) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("APP_FUNCTION", "AWS_LAMBDA_FUNCTION_NAME")}
    env.update(ENV)
    if function:
        env["APP_FUNCTION"] = function
    if lambda_env:
        env["AWS_LAMBDA_FUNCTION_NAME"] = "probe"
    return run_json(PROBE.format(app_dir=str(APP_DIR), event=repr(event), function=function or "app"), env)


def test_the_api_registers_every_route_and_loads_the_send_path_with_the_first_send():
    api = probe()
    assert {"/sms", "/mms", "/messages", "/batches/{batch_id}", "/webhooks", "/opt-outs", "/health", "/reports/daily",
            "/exports", "/exports/{export_id}"} <= set(api["routes"])
    assert "chalice.app" in api["loaded"]
    assert not [m for m in api["loaded"] if m.startswith("chalicelib.reports.") and not m.endswith(".routes")]
    # Each route's services load on its first call: a cold start that answers GET /health compiles none of them.
    assert not [m for m in api["loaded"] if m.startswith("phonenumbers") or m in (
        "chalicelib.sending.messages", "chalicelib.sending.validation", "chalicelib.keys.manage",
        "chalicelib.templates.manage", "chalicelib.webhooks.manage")]


def test_make_bench_times_the_apis_first_send_with_what_post_sms_loads():
    """``cold import api + first send`` imports what ``POST /sms`` loads on its first call: the send path and
    the phone number library, which the API's own row no longer holds."""
    from bench import cold_start

    label, view, package, _target = cold_start.FIRST_SEND
    modules = cold_start.imports_in(view, cold_start.SEND_ROUTES, package)
    assert "chalicelib.sending.messages" in modules
    code = (f"import json, sys, importlib; sys.path.insert(0, {str(APP_DIR)!r}); import app; "
            f"[importlib.import_module(m) for m in {modules!r}]; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('chalicelib', 'phonenumbers')))))")
    loaded = run_json(code, {**os.environ, **ENV})
    assert {"phonenumbers", "chalicelib.sending.validation", "chalicelib.sending.templated"} <= set(loaded)


CAPABILITIES = {  # each Lambda function of app.py, and the capability function it hands its event to
    "batch_worker": ("chalicelib.sending.worker", "handle"), "status_ingest": ("chalicelib.status.ingest", "ingest"),
    "webhook_fanout": ("chalicelib.webhooks.events", "fanout"),
    "webhook_delivery": ("chalicelib.webhooks.delivery", "deliver_batch"),
    "schedule_sweep": ("chalicelib.sending.schedule", "sweep"), "inbound_reply": ("chalicelib.replies.inbound", "handle"),
    "report_tally": ("chalicelib.reports.tally", "handle"), "export_writer": ("chalicelib.reports.writer", "handle"),
}
@pytest.mark.parametrize("function, runs", [(function, module) for function, (module, _) in CAPABILITIES.items()])
def test_any_other_function_registers_no_route_and_loads_nothing_of_the_api(function, runs):
    started = probe(function)
    assert started["routes"] == []
    assert not [m for m in started["loaded"] if m == "chalice" or m.startswith("chalice.")]  # nor Chalice
    assert not [m for m in started["loaded"] if m.endswith(".routes") or m in (
        "chalicelib.core.web", "chalicelib.core.inputs", "chalicelib.openapi", "chalicelib.console.page")]
    assert runs not in started["loaded"]  # its own module comes with its first event


def test_the_key_authorizers_handler_loads_neither_chalice_nor_any_route():
    """The stack's ``Bearer`` function runs ``chalicelib.keys.authorizer.handler`` (not Chalice's wrapper, which
    Chalice would name): its cold start is the key check, one DynamoDB client and nothing of the API."""
    from bench import cold_start
    from infra.api import SenderApi

    module, _, function = SenderApi.AUTHORIZER_HANDLER.rpartition(".")
    assert cold_start.HANDLER_MODULES[SenderApi.AUTHORIZER] == module  # make bench times what deploys
    code = (f"import json, sys; sys.path.insert(0, {str(APP_DIR)!r}); import importlib; "
            f"handler = getattr(importlib.import_module({module!r}), {function!r}); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('chalice', 'phonenumbers')))))")
    env = {**{k: v for k, v in os.environ.items() if k != "APP_FUNCTION"}, **ENV}
    loaded = run_json(code, env)
    assert module in loaded and "chalicelib.keys.tokens" in loaded
    assert not [m for m in loaded if m == "chalice" or m.startswith(("chalice.", "phonenumbers")) or m.endswith(
        (".routes", ".routing", ".manage")) or m.startswith(("chalicelib.sending", "chalicelib.core.web"))], loaded


HANDED_ON = """
import importlib, json, sys
sys.path.insert(0, {app_dir!r})
import app
seen = {{}}
for function, (module, name) in {capabilities!r}.items():
    def record(*args, function=function):
        seen[function] = [repr(a) for a in args]
        return {{"handled by": function}}
    setattr(importlib.import_module(module), name, record)
    answer = getattr(app, function)({{"Records": [function]}}, "context")
    assert answer == {{"handled by": function}}, answer
print(json.dumps({{"seen": seen, "chalice": "chalice" in sys.modules, "app": hasattr(app, "app")}}))
"""


def test_on_lambda_each_event_function_is_a_plain_function_handing_its_event_on():
    """Deployed, Lambda calls ``app.<function>`` itself, without Chalice: each hands its event (and its context,
    where its capability takes one) to its capability and returns that answer."""
    env = {**{k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}, **ENV,
           "APP_FUNCTION": "batch_worker"}
    code = HANDED_ON.format(app_dir=str(APP_DIR), capabilities=CAPABILITIES)
    found = run_json(code, env)
    assert found["app"] is False and found["chalice"] is False
    assert set(found["seen"]) == set(CAPABILITIES)
    for function, args in found["seen"].items():
        assert args[0] == repr({"Records": [function]}) and args[1:] in ([], ["'context'"]), (function, args)


def test_on_lambda_the_collector_waits_for_the_first_event():
    # An event the ingest refuses (not CloudWatch Logs data): still an event handled.
    handled = probe("status_ingest", event={"awslogs": {"data": "bm90IGd6aXA="}})
    assert handled["gc_after_import"] is False and handled["gc_after_event"] is True


def test_off_lambda_the_collector_is_left_alone():
    assert probe(lambda_env=False)["gc_after_import"] is True


def test_make_bench_times_every_function_app_py_defines():
    """bench/cold_start.py has a row for each Lambda function of app.py (and the authorizer, its own module)."""
    import ast

    from bench import cold_start

    tree = ast.parse((APP_DIR / "app.py").read_text(encoding="utf-8"))
    defined = {keyword.value.value for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
               for decorator in node.decorator_list if isinstance(decorator, ast.Call)
               and getattr(decorator.func, "id", "") == "lambda_function"
               for keyword in decorator.keywords if keyword.arg == "name"}
    assert {"report_tally", "export_writer", "schedule_sweep"} <= defined
    benched = {name for name, _clients in cold_start.FUNCTIONS.values()}
    assert benched == defined | {"api_handler", "bearer"}
    assert cold_start.imports_in("report_tally") == ["chalicelib.reports.tally"]
    assert cold_start.imports_in("export_writer") == ["chalicelib.reports.writer"]


def test_the_schedule_sweep_loads_neither_the_phone_number_library_nor_the_send_path():
    """Its cold start: the sweep reads an index and puts ids on a queue; it needs none of what sends."""
    code = (f"import json, sys; sys.path.insert(0, {str(APP_DIR)!r}); import app; "
            "from chalicelib.sending import schedule; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('chalicelib', 'phonenumbers')))))")
    env = {**{k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}, **ENV,
           "APP_FUNCTION": "schedule_sweep"}
    loaded = run_json(code, env)
    assert "chalicelib.sending.schedule" in loaded
    assert not [m for m in loaded if m.startswith("phonenumbers") or m in (
        "chalicelib.sending.messages", "chalicelib.sending.validation", "chalicelib.core.phone",
        "chalicelib.sending.worker")]


def test_make_bench_runs_each_pair_at_its_own_depth_of_the_call_stack():
    """bench/cold_start.py runs a pair's code ``depth`` frames deeper, unchanged otherwise, and spreads the pairs
    over one chunk of CPython's frame stack."""
    from bench import cold_start

    code = "import sys\nfrom pathlib import Path\n\ndef deep():\n    return len(__import__('inspect').stack())\n" \
           "print(Path('a').name, __name__, deep())"

    def run(depth):
        out = subprocess.run([sys.executable, "-c", cold_start._at_depth(code, depth)], capture_output=True,
                             text=True, timeout=60, check=True)
        name, module, frames = out.stdout.split()
        return name, module, int(frames)

    shallow, deep = run(0), run(37)
    assert shallow[:2] == deep[:2] == ("a", "__main__")
    assert deep[2] - shallow[2] == 37
    spread = cold_start.depths(9)
    assert spread[0] == 0 and spread == sorted(set(spread)) and spread[-1] < cold_start.CHUNK_FRAMES
    gaps = {b - a for a, b in zip(spread, spread[1:])}
    assert max(gaps) - min(gaps) <= 1 and spread[-1] + max(gaps) >= cold_start.CHUNK_FRAMES - 1
