"""Message templates: the templates table (each template's versions under its id, and a keys-only index that
lists the templates). Only the API function touches it (grants in ``infra/api.py``): a send renders its template
there, and the batch worker sends the body already rendered."""
from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

import apppath  # noqa: F401  (puts app/ on the path for chalicelib)
from chalicelib.core import schema  # table keys shared with the app and the local stack

from .config import StageConfig
from .store import table


class TemplateStore(Construct):
    """The templates table: on demand, point-in-time recovery, retained (a deploy never loses the stage's
    templates, which messages name by id and version)."""

    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        string = dynamodb.AttributeType.STRING
        self.table = table(self, "Templates", schema.TEMPLATES_KEY, schema.TEMPLATES_SORT,
                           sort_type=dynamodb.AttributeType.NUMBER, removal=RemovalPolicy.RETAIN)
        # Only heads carry the list keys; keys only: a page reads the heads by key, strongly consistent.
        self.table.add_global_secondary_index(
            index_name=schema.TEMPLATES_LIST_INDEX,
            partition_key=dynamodb.Attribute(name=schema.TEMPLATES_LIST_PARTITION, type=string),
            sort_key=dynamodb.Attribute(name=schema.TEMPLATES_LIST_SORT, type=string),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
