"""API keys: the keys table (one item per key; only a digest of each secret). The authorizer function reads it
and writes ``lastUsedAt``, and the API's ``/keys`` routes keep it (grants in ``infra/api.py``); nothing else."""
from __future__ import annotations

from aws_cdk import RemovalPolicy
from constructs import Construct

import apppath  # noqa: F401  (puts app/ on the path for chalicelib)
from chalicelib.core import schema  # table keys shared with the app and the local stack

from .config import StageConfig
from .store import table


class KeyStore(Construct):
    """The keys table: on demand, point-in-time recovery, retained (a deploy never loses the stage's keys)."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.table = table(self, "Keys", schema.KEYS_KEY, removal=RemovalPolicy.RETAIN)
