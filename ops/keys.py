"""``make key``, ``make keys`` and ``make revoke-key``: a deployed stage's API keys, with your AWS credentials.

    python -m ops.keys create --stage dev --name "first admin" --scopes keys:manage,messages:send [--test]
                              [--expires-at 2027-06-30T00:00:00Z]
    python -m ops.keys list --stage dev
    python -m ops.keys revoke --stage dev --id key_…

IAM is the root of trust: whoever may write the stage's keys table (``dynamodb:PutItem``; ``Scan`` to list,
``UpdateItem`` to revoke) can make a key, with any scopes; this is how a new stage gets its first key, and how a
team recovers when no key with ``keys:manage`` is left. The table's name comes from cdk-outputs-<stage>.json
(``make deploy`` writes it; the region is the one its ApiUrl names), else from the stack's outputs in
CloudFormation. A new key is printed once, on its own line; only its SHA-256 is stored. The checks are those of
``POST /keys`` (``chalicelib/keys/manage.py``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

import apppath  # noqa: F401  (puts app/ on the path for chalicelib)
from chalicelib.core.caller import Caller
from chalicelib.core.errors import MessagingError
from chalicelib.keys import manage, scopes
from infra.config import StageConfigError, stack_name
from ops import (CREDENTIALS_FIX, REGION_FIX, ROOT, api_region, aws_error, check_endpoint, refuse, region,
                 stage_settings)

# Who makes a key through here: the operator's IAM identity, which may grant every scope.
OPERATOR = Caller("iam", frozenset(scopes.SCOPES), False)


class KeysError(Exception):
    """One line that says what went wrong and how to fix it."""


def location(stage: str, session, outputs_path: Path | None = None) -> tuple[str, str]:
    """The stage's keys table and its region: from the outputs file ``make deploy`` writes (the region is the one
    its ApiUrl names, else the shell's), else from CloudFormation in the shell's region."""
    path = outputs_path or ROOT / f"cdk-outputs-{stage}.json"
    try:
        outputs = json.loads(path.read_text())[stack_name(stage)]
        table = outputs["KeysTableName"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        outputs = table = None
    region_name = (api_region(outputs.get("ApiUrl")) if table else None) or region(session)
    if not region_name:
        raise KeysError(f"no region is set: {REGION_FIX}")
    if table:
        return table, region_name
    try:
        stacks = session.client("cloudformation", region_name=region_name).describe_stacks(
            StackName=stack_name(stage))["Stacks"]
    except NoCredentialsError:
        raise KeysError(f"no AWS credentials: {CREDENTIALS_FIX}") from None
    except (ClientError, BotoCoreError) as err:
        raise KeysError(f"could not read the outputs of {stack_name(stage)}: {aws_error(err)} (deploy it first: "
                        f"`make deploy STAGE={stage}`)") from None
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == "KeysTableName":
            return output["OutputValue"], region_name
    raise KeysError(f"{stack_name(stage)} has no KeysTableName output: deploy this version first "
                    f"(`make deploy STAGE={stage}`)")


def create(dynamodb, table: str, name: str, granted: list[str], *, test: bool = False,
           expires_at: str | None = None, now=None) -> tuple[dict, str]:
    """(the key resource, the key itself)."""
    request = {"name": name, "scopes": granted, "test": test, "expiresAt": expires_at}
    item, key = manage.prepare(request, OPERATOR, now=now)
    manage.put(dynamodb, table, item)
    return manage.public(item), key


def listing(dynamodb, table: str) -> list[dict]:
    return manage.listing_in(dynamodb, table)["keys"]


def revoke(dynamodb, table: str, key_id: str) -> None:
    manage.revoke_in(dynamodb, table, key_id)


def _scopes(raw: str) -> list[str]:
    return [part for part in raw.replace(",", " ").split() if part]


def main(argv: list[str] | None = None, session=None, out=None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m ops.keys", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("create", "list", "revoke"))
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--name", help="what the key is for (create)")
    parser.add_argument("--scopes", default="", help="comma- or space-separated: " + ", ".join(scopes.SCOPES))
    parser.add_argument("--test", action="store_true", help="a test key: no provider is ever called")
    parser.add_argument("--expires-at", help="ISO 8601 with an offset or Z (create)")
    parser.add_argument("--id", help="the key's id, key_… (revoke)")
    parser.add_argument("--outputs", type=Path, help="the outputs file (default cdk-outputs-<stage>.json)")
    args = parser.parse_args(argv)
    try:
        stage_settings(args.stage)
    except StageConfigError as err:
        return refuse(parser.prog, err)
    blocker = check_endpoint()
    if blocker:
        print(f"{parser.prog}: {blocker.detail} ({blocker.fix})", file=sys.stderr)
        return 2
    session = session or boto3.Session()
    try:
        table, region_name = location(args.stage, session, args.outputs)
        dynamodb = session.client("dynamodb", region_name=region_name)
        if args.command == "create":
            resource, key = create(dynamodb, table, args.name or "", _scopes(args.scopes), test=args.test,
                                   expires_at=args.expires_at)
            print(f"Made {resource['id']} ({resource['name']}): {' '.join(resource['scopes'])}"
                  f"{' (test key)' if resource['test'] else ''}. The key, shown this once:", file=out)
            print(key, file=out)
        elif args.command == "list":
            for resource in listing(dynamodb, table):
                state = f"revoked {resource['revokedAt']}" if resource["revokedAt"] else \
                    f"last used {resource['lastUsedAt'] or 'never'}"
                print(f"{resource['id']}  {resource['prefix']}  {resource['name']}  "
                      f"{' '.join(resource['scopes'])}  {state}", file=out)
        else:
            revoke(dynamodb, table, args.id or "")
            print(f"Revoked {args.id}: it stops working within a minute.", file=out)
    except MessagingError as err:
        print(f"{parser.prog}: {err.code}: {err.message}", file=sys.stderr)
        return 1
    except KeysError as err:
        print(f"{parser.prog}: {err}", file=sys.stderr)
        return 1
    except NoCredentialsError:
        print(f"{parser.prog}: no AWS credentials: {CREDENTIALS_FIX}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as err:
        print(f"{parser.prog}: AWS refused: {aws_error(err)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
