"""A stoppable background loop, the shape every poller of the local stack shares (``rules.RateRule``,
``streams.StreamPlayer``, ``receipts.Receipts``): a daemon thread runs ``_run`` from ``start`` until ``stop``
sets ``_stop``, which ``_run`` checks between polls; ``stop`` then waits for the invocation under way, up to
the function's timeout and a little more.
"""
from __future__ import annotations

import threading
from typing import Self


class Poller:
    """Subclasses write ``_run``, which returns once ``self._stop`` is set."""

    def __init__(self, *, name: str, function_timeout: float):
        self.function_timeout = function_timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.function_timeout + 5)

    def _run(self) -> None:
        raise NotImplementedError
