"""A local stack in a child process, as ``make dev`` runs it, for the benchmarks that load it over HTTP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serving(module: str, start_seconds: float = 30.0):
    """Run ``python -m <module> --serve <ready file>`` and yield what the child wrote to the ready file
    once it is up; stop it afterwards (its stdin closes)."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        ready = Path(scratch) / "ready.json"
        # The app as make dev runs it: its own log level, the stack's own endpoint.
        env = {k: v for k, v in os.environ.items() if k not in ("POWERTOOLS_LOG_LEVEL", "AWS_ENDPOINT_URL")}
        env["PYTHONPATH"] = str(ROOT)
        # The app's log lines and the server's access log go to a file: a pipe nobody reads would fill
        # and stall the stack.
        output = open(Path(scratch) / "output.txt", "w+b")
        child = subprocess.Popen([sys.executable, "-m", module, "--serve", str(ready)], cwd=ROOT, env=env,
                                 stdin=subprocess.PIPE, stdout=output, stderr=output)
        try:
            while not ready.exists():
                if child.poll() is not None or time.monotonic() - began > start_seconds:
                    output.seek(0)
                    raise RuntimeError(f"the local stack did not start: {output.read().decode()[-2000:]}")
                time.sleep(0.1)
            yield json.loads(ready.read_text())
        finally:
            child.stdin.close()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)
            output.close()
