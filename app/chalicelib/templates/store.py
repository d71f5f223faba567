"""The templates table (``schema.TEMPLATES_*``): a head item per template (version 0: the latest version's content,
``latest``, ``archivedAt``, the list keys) and one item per version, written together in one transaction so that
the head never names a version that is not stored. Versions are never changed or deleted."""
from __future__ import annotations

from ..core import aws, schema
from ..core.store import batch_get, encode, from_item, to_item

# What a template's content is, in the head and in each version.
CONTENT = ("name", "body", "channel", "mediaUrl", "placeholders")


def key(template_id: str, version: int = schema.TEMPLATE_HEAD) -> dict:
    return {schema.TEMPLATES_KEY: {"S": template_id}, schema.TEMPLATES_SORT: {"N": str(version)}}


def sort_key(head: dict) -> str:
    return f"{head['createdAt']}#{head[schema.TEMPLATES_KEY]}"


def _put_new(table: str, item: dict) -> dict:
    return {"Put": {"TableName": table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(#id)",
                    "ExpressionAttributeNames": {"#id": schema.TEMPLATES_KEY}}}


def create(table: str, template_id: str, content: dict, at: str) -> dict:
    """Store a new template's head and its version 1; return the head."""
    head = {schema.TEMPLATES_KEY: template_id, schema.TEMPLATES_SORT: schema.TEMPLATE_HEAD, **content, "latest": 1,
            "createdAt": at, "updatedAt": at, schema.TEMPLATES_LIST_PARTITION: schema.TEMPLATES_LIST_VALUE}
    head[schema.TEMPLATES_LIST_SORT] = sort_key(head)
    first = {schema.TEMPLATES_KEY: template_id, schema.TEMPLATES_SORT: 1, **content, "createdAt": at, "updatedAt": at}
    aws.client("dynamodb").transact_write_items(TransactItems=[_put_new(table, head), _put_new(table, first)])
    return head


def add_version(table: str, head: dict, content: dict, at: str) -> dict | None:
    """Store version ``latest + 1`` and make it the head's, if the head is still at ``latest`` and not archived.
    Returns the new head, or None when the head changed first (another version, or archived)."""
    client = aws.client("dynamodb")
    template_id, version = head[schema.TEMPLATES_KEY], head["latest"] + 1
    names = {"#latest": "latest", "#archived": "archivedAt", "#updatedAt": "updatedAt"}
    values = {":previous": encode(head["latest"]), ":latest": encode(version), ":at": encode(at)}
    sets = ["#latest = :latest", "#updatedAt = :at"]
    for i, field in enumerate(CONTENT):
        names[f"#c{i}"], values[f":c{i}"] = field, encode(content[field])
        sets.append(f"#c{i} = :c{i}")
    update = {"Update": {"TableName": table, "Key": key(template_id), "UpdateExpression": "SET " + ", ".join(sets),
                         "ConditionExpression": "#latest = :previous AND attribute_not_exists(#archived)",
                         "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}
    item = {schema.TEMPLATES_KEY: template_id, schema.TEMPLATES_SORT: version, **content,
            "createdAt": head["createdAt"], "updatedAt": at}
    try:
        client.transact_write_items(TransactItems=[update, _put_new(table, item)])
    except client.exceptions.TransactionCanceledException:
        return None
    return {**head, **content, "latest": version, "updatedAt": at}


def get(table: str, template_id: str, version: int = schema.TEMPLATE_HEAD) -> dict | None:
    item = aws.client("dynamodb").get_item(TableName=table, Key=key(template_id, version),
                                           ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def archive(table: str, template_id: str, at: str) -> bool:
    """Set ``archivedAt`` (once: archiving again changes nothing). False when there is no such template."""
    client = aws.client("dynamodb")
    try:
        client.update_item(TableName=table, Key=key(template_id),
                           UpdateExpression="SET #archived = if_not_exists(#archived, :at)",
                           ConditionExpression="attribute_exists(#id)",
                           ExpressionAttributeNames={"#archived": "archivedAt", "#id": schema.TEMPLATES_KEY},
                           ExpressionAttributeValues={":at": encode(at)})
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def page(table: str, limit: int, before: str | None) -> tuple[list[dict], str | None]:
    """Heads, newest first, older than the sort key ``before``: (up to ``limit`` heads, the sort key of the last
    one when more follow, else None). The index lists keys; the heads are read by key, strongly consistent."""
    client = aws.client("dynamodb")
    condition, names = "#pk = :pk", {"#pk": schema.TEMPLATES_LIST_PARTITION}
    values = {":pk": {"S": schema.TEMPLATES_LIST_VALUE}}
    if before is not None:
        condition += " AND #sk < :before"
        names["#sk"], values[":before"] = schema.TEMPLATES_LIST_SORT, {"S": before}
    params = {"TableName": table, "IndexName": schema.TEMPLATES_LIST_INDEX, "KeyConditionExpression": condition,
              "ExpressionAttributeNames": names, "ExpressionAttributeValues": values, "ScanIndexForward": False,
              "Limit": limit + 1}  # one more tells whether another page follows
    listed: list[tuple[str, str]] = []
    while len(listed) <= limit:
        response = client.query(**params)
        listed += [(item[schema.TEMPLATES_LIST_SORT]["S"], item[schema.TEMPLATES_KEY]["S"])
                   for item in response.get("Items", [])]
        if not response.get("LastEvaluatedKey"):
            break
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    more, listed = len(listed) > limit, listed[:limit]
    found = {item[schema.TEMPLATES_KEY]: item for item in (
        from_item(raw) for raw in batch_get(table, [key(template_id) for _, template_id in listed],
                                            ConsistentRead=True))}
    heads = [found[template_id] for _, template_id in listed if template_id in found]
    return heads, (listed[-1][0] if more else None)
