"""Real HTTP on loopback for the end-to-end tests."""
import json
import time
import urllib.error
import urllib.request


class Http:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=HANG_GUARD) as response:
                return response.status, dict(response.headers), _json(response.read())
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), _json(err.read())


def _json(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw


# How long a wait gives a condition that never comes. A hang guard, not a measurement: every wait ends
# as soon as its condition holds, so this only decides how soon a test that would hang fails instead.
# It is generous because the suite must hold on a machine whose cores other work keeps busy.
HANG_GUARD = 120.0


def wait_for(check, seconds: float = HANG_GUARD, every: float = 0.2):
    """``check()`` until it is truthy, for at most ``seconds`` (a hang guard: see ``HANG_GUARD``); its
    last answer."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(every)
