"""``sms``: the API from a terminal. Options follow the subcommand: ``sms send --to NUMBER --body TEXT``.

Where it sends: ``--stage NAME`` reads the API's address (``ApiUrl``) from ``cdk-outputs-NAME.json``, which
``make deploy`` writes; else ``SMS_API_URL``; else ``make dev``'s http://127.0.0.1:8000. The key: ``SMS_API_KEY``,
or a file holding it (``--key-file PATH`` or ``SMS_API_KEY_FILE``). Never from a flag's value, which would land in
the shell's history; and never from the outputs file, which holds no key (keys are made by ``make key`` or
``sms keys create``).

Human output by default; ``--json`` prints the API's JSON on stdout. An error prints its code and message on
stderr. Exit codes: 0 done; 1 the API refused or could not be reached; 2 a wrong command line or setting;
3 a wait ran out of time; 130 interrupted (but ``sms tail``, which Ctrl-C ends normally: 0).

Built on the standard library's argparse, so the client's only dependency stays httpx.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping, Sequence

import httpx

from . import errors
from ._client import Client
from ._core import NOT_RETRIED, RETRIED_CONFLICTS
from .models import FINAL_STATUSES, BatchProgress, Message, Model

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
BATCH_LIMIT = 1000  # POST /batches takes at most 1,000 messages: a longer file goes as several batches
BATCH_FIELDS = {"to": "to", "phone number": "to", "body": "body", "channel": "channel", "country": "country",
                "type": "type", "senderid": "senderId", "sender_id": "senderId", "mediaurl": "mediaUrl",
                "media_url": "mediaUrl"}


class UsageError(Exception):
    """A wrong command line or setting: exit 2 with this message."""


class Out:
    """Where the command writes: ``stdout`` for results, ``stderr`` for errors and progress."""

    def __init__(self, stdout: IO[str], stderr: IO[str], as_json: bool):
        self.stdout, self.stderr, self.json = stdout, stderr, as_json

    def line(self, text: str = "") -> None:
        print(text, file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.stderr, flush=True)

    def data(self, value: Any) -> None:
        print(json.dumps(_plain(value), ensure_ascii=False), file=self.stdout, flush=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def mask(number: str | None) -> str:
    """'+14255550123' -> '+1425•••0123', as the console shows a number in its history."""
    if not number:
        return "-"
    if not number.startswith("+") or len(number) < 9:
        return number
    return number[:5] + "•••" + number[-4:]


# -- where to send -------------------------------------------------------------------------------------------------

def api_url(stage: str | None, outputs: str | None, env: Mapping[str, str]) -> str:
    if stage:
        path = Path(outputs or f"cdk-outputs-{stage}.json")
        try:
            stacks = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"{path} not found: deploy the stage first (make deploy STAGE={stage}), "
                             "or run where that file is") from None
        except ValueError:
            raise UsageError(f"{path} is not JSON") from None
        stack = stacks.get(f"SmsSender-{stage}") if isinstance(stacks, dict) else None
        if not isinstance(stack, dict):
            found = [s for s in stacks.values() if isinstance(s, dict) and "ApiUrl" in s] \
                if isinstance(stacks, dict) else []
            stack = found[0] if len(found) == 1 else None
        if not stack or not stack.get("ApiUrl"):
            raise UsageError(f"{path} has no ApiUrl for stage {stage}")
        return str(stack["ApiUrl"])
    return env.get("SMS_API_URL") or "http://127.0.0.1:8000"


def api_key(key_file: str | None, stage: str | None, env: Mapping[str, str]) -> str | None:
    path = key_file or (None if env.get("SMS_API_KEY") else env.get("SMS_API_KEY_FILE"))
    if path:
        try:
            key = Path(path).read_text().strip()
        except OSError as err:
            raise UsageError(f"cannot read the key file {path}: {err.strerror}") from None
        if not key:
            raise UsageError(f"the key file {path} is empty")
        return key
    if env.get("SMS_API_KEY"):
        return env["SMS_API_KEY"].strip()
    if stage:
        raise UsageError(f"no key: cdk-outputs-{stage}.json gives the API's address but never a key (none is "
                         "written there). Set SMS_API_KEY, or SMS_API_KEY_FILE or --key-file to a file holding it "
                         f"(make one with: make key STAGE={stage} NAME=cli SCOPES=messages:send,messages:read)")
    return None


# -- the commands ----------------------------------------------------------------------------------------------

def _vars(pairs: Sequence[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--var takes name=value, not {pair!r}")
        values[name.strip()] = value
    return values


def cmd_send(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    if args.var and not args.template:
        raise UsageError("--var goes with --template")
    if args.template and args.body is not None:
        raise UsageError("give --body or --template, not both")
    if args.body is None and not args.template and not args.media:
        raise UsageError("give --body TEXT, --template ID or --media FILE")
    args.given_key = args.idempotency_key
    if not args.media:  # an SMS asked again with its key is answered, never sent again (an MMS uploads anew)
        args.idempotency_key = args.retry_key = args.idempotency_key or str(uuid.uuid4())
    common = dict(country=args.country, dry_run=True if args.dry_run else None, send_at=args.send_at,
                  validity_period=args.validity, max_price_usd=args.max_price, template_id=args.template,
                  template_version=args.template_version,
                  personalisation=_vars(args.var) if args.template else None, idempotency_key=args.idempotency_key)
    if args.media:
        if not Path(args.media).is_file():
            raise UsageError(f"{args.media}: no such file")
        media_url = client.upload_media(args.media, args.content_type)
        message = client.send_mms(args.to, media_url, args.body, **common)
    else:
        message = client.send_sms(args.to, args.body, type=args.type, sender_id=args.sender_id, **common)
    if args.wait:
        message = client.wait_for_final(message.id, timeout=args.wait)
    if out.json:
        out.data(message)
    else:
        out.line(_message_line(message))
    return EXIT_OK


def _message_line(m: Message, full: bool = True) -> str:
    who = m.to if m.direction == "outbound" else m.from_
    shown = (who or "-") if full else mask(who)
    error = f"  {m.error.code}" if m.error else ""
    extra = "  (dry run: nothing sent)" if m.dry_run else ("  (test key: nothing sent)" if m.test else "")
    return f"{m.id}  {m.status:<9}  {m.direction:<8}  {m.channel}  {shown}  {m.segments} part(s){error}{extra}"


def cmd_get(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    message = client.get_message(args.id)
    if args.wait:
        message = client.wait_for_final(args.id, timeout=args.wait)
    if out.json:
        out.data(message)
    else:
        _fields(out, message.to_dict())
    return EXIT_OK


def _fields(out: Out, values: Mapping[str, Any]) -> None:
    width = max((len(k) for k in values), default=0)
    for key, value in values.items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
        out.line(f"{key:<{width}}  {'-' if value is None else shown}")


def _table(out: Out, rows: Iterable[Sequence[Any]], header: Sequence[str]) -> int:
    rows = [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    out.line("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for row in rows:
        out.line("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return len(rows)


def _message_row(m: Message) -> list[Any]:
    return [m.created_at, m.id, m.direction, m.channel, mask(m.to if m.direction == "outbound" else m.from_),
            m.status, m.error.code if m.error else None]


MESSAGE_HEADER = ["createdAt", "id", "direction", "channel", "number", "status", "error"]


def cmd_list(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    if args.all:
        messages = list(client.iter_messages(limit=100, direction=args.direction, status=args.status))
        nxt = None
    else:
        page = client.list_messages(limit=args.limit, direction=args.direction, status=args.status)
        messages, nxt = page.items, page.next
    if out.json:
        out.data({"messages": messages, "next": nxt})
    else:
        _table(out, (_message_row(m) for m in messages), MESSAGE_HEADER)
        if nxt:
            out.note("more: sms list --all")
    return EXIT_OK


def cmd_cancel(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    result: Model = client.cancel_batch(args.id) if args.batch else client.cancel_message(args.id)
    if out.json:
        out.data(result)
    else:
        _fields(out, result.to_dict())
    return EXIT_OK


# -- batch -----------------------------------------------------------------------------------------------------

def read_batch(path: str, template: str | None) -> list[dict[str, Any]]:
    """The CSV's rows as batch items. Its header names ``to`` (or ``phone number``) and the message fields
    (``body``, ``mediaUrl``, ``channel``, ``country``, ``type``, ``senderId``); with ``--template`` every other
    column is a placeholder's value."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            rows = list(reader)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"{path}: not a UTF-8 CSV file ({err})") from None
    names = {column: BATCH_FIELDS.get(column.strip().lower()) for column in header}
    if "to" not in names.values():
        raise UsageError(f"{path}: the header needs a 'to' (or 'phone number') column; it has {header}")
    others = [column for column, field in names.items() if field is None]
    if others and not template:
        raise UsageError(f"{path}: unknown column(s) {others}: the columns are "
                         f"{sorted(set(BATCH_FIELDS))} (or give --template, whose placeholders the others fill)")
    if not rows:
        raise UsageError(f"{path}: no rows under the header")
    items = []
    for row in rows:
        item: dict[str, Any] = {}
        for column, field in names.items():
            value = row.get(column)
            if value in (None, ""):
                continue
            if field:
                item[field] = value
            else:
                item.setdefault("personalisation", {})[column.strip()] = value
        items.append(item)
    return items


class Progress:
    """A one-line progress bar on stderr: redrawn in place on a terminal, one line per change elsewhere."""

    def __init__(self, stream: IO[str], total: int):
        self.stream, self.total = stream, total
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def show(self, counts: Mapping[str, int], finished: int) -> None:
        width = 30
        filled = int(width * finished / self.total) if self.total else width
        parts = "  ".join(f"{name} {n}" for name, n in counts.items() if n)
        text = f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{self.total} final  {parts}"
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


NOT_FINAL = ("queued", "sent", "scheduled")


def cmd_batch(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    items = read_batch(args.file, args.template)
    chunks = [items[i:i + BATCH_LIMIT] for i in range(0, len(items), BATCH_LIMIT)]
    accepted, rejected = [], []
    args.given_key = args.idempotency_key
    args.retry_key = args.idempotency_key = args.idempotency_key or str(uuid.uuid4())
    for number, chunk in enumerate(chunks):
        key = f"{args.idempotency_key}-{number + 1}"
        answer = client.create_batch(chunk, template_id=args.template, send_at=args.send_at, idempotency_key=key)
        accepted.append(answer)
        for reject in answer.rejected:
            line = number * BATCH_LIMIT + reject.index + 2  # the header is line 1
            rejected.append({"line": line, **reject.error.to_dict()})
    total_accepted = sum(a.accepted for a in accepted)
    out.note(f"{len(items)} row(s): {total_accepted} accepted, {len(rejected)} rejected "
             f"({', '.join(a.id for a in accepted)})")
    progress: dict[str, BatchProgress] = {}
    if not args.no_wait and total_accepted:
        bar = Progress(out.stderr, total_accepted)
        deadline = ctx.clock() + args.timeout

        def changed(p: BatchProgress) -> None:
            progress[p.id] = p
            counts = _sum_counts(progress.values())
            bar.show(counts, total_accepted - sum(counts.get(s, 0) for s in NOT_FINAL))

        try:
            for answer in accepted:
                if answer.accepted:
                    left = deadline - ctx.clock()
                    progress[answer.id] = client.wait_for_batch(answer.id, timeout=max(left, 0.001),
                                                                on_change=changed)
        except errors.WaitTimeout:
            bar.end()
            out.note(f"sms: the batch was not done after {args.timeout:g} s; see it with: sms batch-status ID")
            _batch_summary(out, accepted, rejected, progress)
            return EXIT_TIMEOUT
        bar.end()
    _batch_summary(out, accepted, rejected, progress)
    return EXIT_OK if total_accepted else EXIT_API  # every row refused: nothing was sent


def _sum_counts(progresses: Iterable[BatchProgress]) -> dict[str, int]:
    total: dict[str, int] = {}
    for p in progresses:
        for name, n in p.counts().items():
            if name != "rejected":
                total[name] = total.get(name, 0) + n
    return total


def _batch_summary(out: Out, accepted: list[Any], rejected: list[dict[str, Any]],
                   progress: Mapping[str, BatchProgress]) -> None:
    counts = _sum_counts(progress.values())
    if out.json:
        out.data({"batches": [{"id": a.id, "accepted": a.accepted, "progress": progress.get(a.id)}
                              for a in accepted],
                  "rejected": rejected, "counts": counts})
        return
    for a in accepted:
        out.line(f"batch {a.id}: {a.accepted} accepted")
    for name, n in counts.items():
        out.line(f"  {name:<10} {n}")
    out.line(f"  {'rejected':<10} {len(rejected)}")
    for r in rejected:
        where = f" ({r['field']})" if r.get("field") else ""
        out.line(f"  line {r['line']}: {r['code']}{where}: {r['message']}")


def cmd_batch_status(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    p = client.get_batch(args.id)
    if out.json:
        out.data(p)
    else:
        _fields(out, p.to_dict())
    return EXIT_OK


# -- tail ------------------------------------------------------------------------------------------------------

def cmd_tail(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    """New messages and status changes, polling ``GET /messages`` (and each unsettled message) every
    ``--interval`` seconds, until Ctrl-C."""
    seen: dict[str, str] = {}

    def show(kind: str, m: Message, was: str | None = None) -> None:
        if out.json:
            out.data({"event": kind, "previousStatus": was, "message": m})
        else:
            change = f"{was} -> {m.status}" if was else m.status
            out.line(f"{m.updated_at}  {m.id}  {m.direction:<8}  {m.channel}  "
                     f"{mask(m.to if m.direction == 'outbound' else m.from_)}  {change}"
                     f"{'  ' + m.error.code if m.error else ''}")

    try:
        recent = client.list_messages(limit=100).items  # what exists now: only what comes after is new
        for m in recent:
            seen[m.id] = m.status
        for m in reversed(recent[:max(0, args.lines)]):  # the last few, oldest first, as tail shows them
            show("message", m)
        if not out.json:
            out.note("following new messages and status changes; Ctrl-C stops")
        while True:
            ctx.sleep(args.interval)
            fresh, token, pages = [], None, 0
            while pages < 10:  # newest first: read on while a whole page is new
                page = client.list_messages(limit=100, next=token)
                pages += 1
                for m in page.items:
                    if m.id not in seen:
                        fresh.append(m)
                    elif seen[m.id] != m.status:
                        show("status", m, seen[m.id])
                        seen[m.id] = m.status
                if not page.next or any(m.id in seen for m in page.items):
                    break
                token = page.next
            listed = {m.id for m in fresh}
            for m in reversed(fresh):
                show("message", m)
                seen[m.id] = m.status
            # messages not on the first pages any more whose status may still change
            watching = [i for i, s in seen.items() if s not in FINAL_STATUSES and i not in listed][:20]
            for message_id in watching:
                try:
                    m = client.get_message(message_id)
                except errors.NotFoundError:
                    del seen[message_id]
                    continue
                if m.status != seen[message_id]:
                    show("status", m, seen[message_id])
                    seen[message_id] = m.status
    except KeyboardInterrupt:
        return EXIT_OK


# -- the other resources ---------------------------------------------------------------------------------------

def _show(out: Out, value: Any) -> None:
    if out.json:
        out.data(value)
    elif isinstance(value, Model):
        _fields(out, value.to_dict())
    elif value is None:
        out.line("done")


def cmd_keys(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    action = args.action or "list"
    if action == "list":
        keys = client.list_keys()
        if out.json:
            out.data({"keys": keys})
        else:
            _table(out, ([k.id, k.name, k.prefix, "test" if k.test else "live", ",".join(k.scopes), k.last_used_at,
                          "revoked" if k.revoked_at else ("expires " + k.expires_at if k.expires_at else "")]
                         for k in keys), ["id", "name", "prefix", "kind", "scopes", "lastUsedAt", "state"])
    elif action == "current":
        _show(out, client.get_current_key())
    elif action == "get":
        _show(out, client.get_key(args.id))
    elif action == "create":
        scopes = [s.strip() for group in args.scope for s in group.split(",") if s.strip()]
        made = client.create_key(args.name, scopes, test=True if args.test else None, expires_at=args.expires_at)
        if out.json:
            out.data(made)
        else:
            _fields(out, {k: v for k, v in made.to_dict().items() if k != "key"})
            if made.key:
                out.line(f"key  {made.key}")
                out.note("This is the only time the key is shown: keep it now (it is stored only as a hash).")
            else:
                out.note("The key was made, but this answer is a replay and cannot show it: revoke "
                         f"{made.id} (sms keys revoke {made.id}) and make another.")
    elif action == "revoke":
        client.revoke_key(args.id)
        _show(out, None) if not out.json else out.data({"revoked": args.id})
    return EXIT_OK


def cmd_webhooks(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    action = args.action or "list"
    if action == "list":
        hooks = client.list_webhooks()
        if out.json:
            out.data({"webhooks": hooks})
        else:
            _table(out, ([h.id, h.url, ",".join(h.events), "enabled" if h.enabled else "disabled: "
                          + (h.disabled_reason or "")] for h in hooks), ["id", "url", "events", "state"])
    elif action == "get":
        _show(out, client.get_webhook(args.id))
    elif action in ("create", "rotate"):
        made = (client.create_webhook(args.url, args.event or None) if action == "create"
                else client.rotate_webhook_secret(args.id))
        _show(out, made)
        if not out.json:
            out.note("The secret is shown only in this answer: give it to your receiver "
                     "(sms_sender.verify_webhook or standardwebhooks).")
    elif action == "delete":
        client.delete_webhook(args.id)
        _show(out, None) if not out.json else out.data({"deleted": args.id})
    elif action == "deliveries":
        deliveries = client.list_webhook_deliveries(args.id, limit=args.limit)
        if out.json:
            out.data({"deliveries": deliveries})
        else:
            _table(out, ([d.attempted_at, d.event_id, d.type, d.attempt, d.outcome, d.status, d.error]
                         for d in deliveries), ["attemptedAt", "eventId", "type", "attempt", "outcome", "status",
                                                "error"])
    return EXIT_OK


def cmd_opt_outs(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    action = args.action or "list"
    if action == "list":
        entries = list(client.iter_opt_outs(limit=100)) if args.all else client.list_opt_outs(limit=args.limit).items
        if out.json:
            out.data({"optOuts": entries})
        else:
            _table(out, ([e.number, e.source, e.opted_out_at] for e in entries), ["number", "source", "optedOutAt"])
    elif action == "get":
        _show(out, client.get_opt_out(args.number))
    elif action == "add":
        _show(out, client.put_opt_out(args.number))
    elif action == "remove":
        client.delete_opt_out(args.number)
        _show(out, None) if not out.json else out.data({"optedIn": args.number})
    return EXIT_OK


def cmd_templates(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    action = args.action or "list"
    if action == "list":
        templates = list(client.iter_templates(limit=100))
        if out.json:
            out.data({"templates": templates})
        else:
            _table(out, ([t.id, t.name, t.channel, t.version, ",".join(t.placeholders)] for t in templates),
                   ["id", "name", "channel", "version", "placeholders"])
    elif action == "get":
        _show(out, client.get_template(args.id, version=args.version))
    elif action == "create":
        _show(out, client.create_template(args.name, args.body, channel=args.channel, media_url=args.media_url))
    elif action == "replace":
        _show(out, client.replace_template(args.id, args.name, args.body, channel=args.channel,
                                           media_url=args.media_url))
    elif action == "archive":
        client.archive_template(args.id)
        _show(out, None) if not out.json else out.data({"archived": args.id})
    return EXIT_OK


def _download(url: str, path: str) -> None:
    """A presigned GET to a file. Not through httpx: its logger writes every URL it fetches at INFO, and this
    one's query string is a signature that opens the file to whoever reads the log."""
    import shutil
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as handle:
        shutil.copyfileobj(response, handle)


def cmd_reports(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    action = args.action or "daily"
    if action == "daily":
        report = client.daily_report(from_=args.from_, to=args.to)
        if out.json:
            out.data(report)
            return EXIT_OK
        rows = []
        for day in report.days:
            for channel, f in (("sms", day.sms), ("mms", day.mms)):
                rows.append([day.date, channel, f.accepted, f.delivered, f.failed, f.unknown, f.pending, f.received,
                             f.segments, f"{f.cost_usd:.5f}"])
        for channel, f in (("sms", report.totals.sms), ("mms", report.totals.mms)):
            rows.append(["total", channel, f.accepted, f.delivered, f.failed, f.unknown, f.pending, f.received,
                         f.segments, f"{f.cost_usd:.5f}"])
        _table(out, rows, ["date", "channel", "accepted", "delivered", "failed", "unknown", "pending", "received",
                           "segments", "costUsd"])
    elif action == "export":
        made = client.create_export(args.from_, args.to, direction=args.direction, status=args.status)
        if args.wait or args.output:
            made = client.wait_for_export(made.id, timeout=args.timeout)
            if made.status == "ready" and args.output and made.url:
                _download(made.url, args.output)
                out.note(f"wrote {args.output}")
        _show(out, made)
        if made.status == "failed":
            return EXIT_API
    elif action == "export-status":
        _show(out, client.get_export(args.id))
    return EXIT_OK


def cmd_health(client: Client, args: argparse.Namespace, out: Out, ctx: "Context") -> int:
    _show(out, client.health())
    return EXIT_OK


# -- the command line ------------------------------------------------------------------------------------------

class Context:
    """What a command may need beyond the client: the clock and the sleep (tests inject both)."""

    def __init__(self, sleep: Callable[[float], None], clock: Callable[[], float]):
        self.sleep, self.clock = sleep, clock


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's parser must not reset what an outer one set
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the API's JSON on stdout (errors as JSON on stderr)")
    common.add_argument("--stage", default=argparse.SUPPRESS,
                        help="read the API's address from cdk-outputs-STAGE.json (the key still comes from "
                             "SMS_API_KEY or a key file)")
    common.add_argument("--outputs", default=argparse.SUPPRESS, metavar="PATH",
                        help="the outputs file (default cdk-outputs-STAGE.json)")
    common.add_argument("--key-file", default=argparse.SUPPRESS, metavar="PATH",
                        help="a file holding the API key (else SMS_API_KEY, then SMS_API_KEY_FILE)")
    return common


def parser() -> argparse.ArgumentParser:
    common = _common()
    # The common options go before the command too (sms --stage prod list), as the epilog's list reads.
    top = argparse.ArgumentParser(prog="sms", description="Send SMS and MMS and follow them, from a terminal.",
                                  parents=[common],
                                  epilog="URL: --stage, SMS_API_URL, or http://127.0.0.1:8000. "
                                         "Key: SMS_API_KEY, SMS_API_KEY_FILE or --key-file.")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str, handler: Callable[..., int], help: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help, **kw)
        p.set_defaults(handler=handler)
        return p

    def actions(p: argparse.ArgumentParser) -> Any:
        s = p.add_subparsers(dest="action", metavar="ACTION")
        return lambda name, help: s.add_parser(name, parents=[common], help=help, description=help)

    send = command("send", cmd_send, "send one SMS, or an MMS with --media")
    send.add_argument("--to", required=True, help="the number, E.164 (+14255550123) or national with --country")
    send.add_argument("--body", help="the text")
    send.add_argument("--media", metavar="FILE", help="send an MMS with this file (uploaded through POST /media)")
    send.add_argument("--content-type", help="the media's type, if its name does not tell (image/png, ...)")
    send.add_argument("--template", metavar="ID", help="send from a template instead of --body")
    send.add_argument("--template-version", type=int, metavar="N")
    send.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                      help="a placeholder's value (repeat for each)")
    send.add_argument("--send-at", metavar="TIME", help="schedule it: ISO 8601 with an offset or Z")
    send.add_argument("--dry-run", action="store_true",
                      help="validate with End User Messaging, send nothing (an SMS: on a stage sending SMS through "
                           "End User Messaging)")
    send.add_argument("--country", metavar="CC", help="ISO country code of a national --to")
    send.add_argument("--type", choices=["transactional", "promotional"])
    send.add_argument("--sender-id")
    send.add_argument("--validity", type=int, metavar="SECONDS", help="give up if not sent within this")
    send.add_argument("--max-price", metavar="USD", help="the most to pay per message part")
    send.add_argument("--idempotency-key", metavar="KEY", help="default: a new one (the same on each retry)")
    send.add_argument("--wait", type=float, metavar="SECONDS", help="wait until the status is final")

    get = command("get", cmd_get, "one message and its status")
    get.add_argument("id")
    get.add_argument("--wait", type=float, metavar="SECONDS", help="wait until the status is final")

    lst = command("list", cmd_list, "messages, newest first")
    lst.add_argument("--limit", type=int, default=20, help="how many (1 to 100; default 20)")
    lst.add_argument("--all", action="store_true", help="every page")
    lst.add_argument("--direction", choices=["outbound", "inbound"])
    lst.add_argument("--status", help="only this status (e.g. scheduled)")

    batch = command("batch", cmd_batch, "send a CSV file's rows as a batch, and show its progress until done")
    batch.add_argument("file", metavar="FILE.csv")
    batch.add_argument("--template", metavar="ID", help="the other columns fill the template's placeholders")
    batch.add_argument("--send-at", metavar="TIME")
    batch.add_argument("--no-wait", action="store_true", help="stop once the batch is accepted")
    batch.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for it (default 3600)")
    batch.add_argument("--idempotency-key", metavar="KEY",
                       help="KEY-1, KEY-2, ... for its batches of 1,000: the same file again with the same KEY "
                            "within 24 hours sends nothing more (default: new keys each run)")

    status = command("batch-status", cmd_batch_status, "a batch's progress")
    status.add_argument("id")

    cancel = command("cancel", cmd_cancel, "cancel a scheduled message (or with --batch, a batch)")
    cancel.add_argument("id")
    cancel.add_argument("--batch", action="store_true")

    tail = command("tail", cmd_tail, "follow new messages and status changes until Ctrl-C")
    tail.add_argument("--interval", type=float, default=2.0, help="seconds between looks (default 2)")
    tail.add_argument("--lines", "-n", type=int, default=10, help="recent messages to show first (default 10)")

    keys = actions(command("keys", cmd_keys, "API keys (default: list)"))
    keys("list", "the stage's keys")
    keys("current", "the key in use")
    keys("get", "one key").add_argument("id")
    create = keys("create", "make a key (shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", required=True, help="a scope (repeat, or comma-separated)")
    create.add_argument("--test", action="store_true", help="a test key: nothing is ever sent")
    create.add_argument("--expires-at", metavar="TIME")
    keys("revoke", "revoke a key").add_argument("id")

    hooks = actions(command("webhooks", cmd_webhooks, "webhook endpoints (default: list)"))
    hooks("list", "the endpoints")
    hooks("get", "one endpoint").add_argument("id")
    made = hooks("create", "register an endpoint (its secret is shown once)")
    made.add_argument("--url", required=True)
    made.add_argument("--event", action="append", help="an event type (repeat); default all")
    hooks("delete", "delete an endpoint").add_argument("id")
    hooks("rotate", "a new secret").add_argument("id")
    deliveries = hooks("deliveries", "recent delivery attempts")
    deliveries.add_argument("id")
    deliveries.add_argument("--limit", type=int)

    opt_command = command("opt-outs", cmd_opt_outs, "the opt-out list (default: list)")
    opt_command.set_defaults(limit=20, all=False)  # `sms opt-outs` alone lists
    opt = actions(opt_command)
    listing = opt("list", "the list")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--all", action="store_true")
    opt("get", "whether a number is opted out").add_argument("number")
    opt("add", "opt a number out").add_argument("number")
    opt("remove", "opt a number back in").add_argument("number")

    tpl = actions(command("templates", cmd_templates, "message templates (default: list)"))
    tpl("list", "the templates")
    one = tpl("get", "one template")
    one.add_argument("id")
    one.add_argument("--version", type=int)
    for name, helptext in (("create", "make a template"),
                           ("replace", "a new version of a template: give the whole template")):
        p = tpl(name, helptext)
        if name == "replace":
            p.add_argument("id")
        p.add_argument("--name", required=True)
        p.add_argument("--body", required=True, help="the text, with ((placeholders))")
        p.add_argument("--channel", choices=["sms", "mms"])
        p.add_argument("--media-url")
    tpl("archive", "archive a template: no new sends from it").add_argument("id")

    reports = command("reports", cmd_reports, "delivery reports (default: daily)")
    reports.set_defaults(from_=None, to=None)  # `sms reports` alone: the last 7 days
    rep = actions(reports)
    daily = rep("daily", "figures per UTC day and channel (default: the last 7 days)")
    daily.add_argument("--from", dest="from_", metavar="YYYY-MM-DD")
    daily.add_argument("--to", metavar="YYYY-MM-DD")
    export = rep("export", "export messages as CSV")
    export.add_argument("--from", dest="from_", required=True, metavar="YYYY-MM-DD")
    export.add_argument("--to", required=True, metavar="YYYY-MM-DD")
    export.add_argument("--direction", choices=["outbound", "inbound"])
    export.add_argument("--status")
    export.add_argument("--wait", action="store_true", help="wait until it is ready")
    export.add_argument("--output", metavar="FILE", help="wait, then download the CSV here")
    export.add_argument("--timeout", type=float, default=900.0)
    rep("export-status", "an export").add_argument("id")

    command("health", cmd_health, "is the API up")
    return top


KEY_HINT = "no key was given: set SMS_API_KEY, or name a file holding it (--key-file FILE or SMS_API_KEY_FILE)"
GUESSED_TYPE_HINT = "the media's type was guessed from the file's name: name it with --content-type TYPE"
REFUSED_KEY_HINT = ("the key given (SMS_API_KEY, --key-file or SMS_API_KEY_FILE) was refused: unknown, revoked or "
                    "expired (see: sms keys)")
REUSED_KEY_HINT = ("--idempotency-key {key} went with another request within the last 24 hours (another file, or "
                   "this one changed since): give a new key to send this one")
RETRY_HINT = ("it may have been done all the same: run the same command with --idempotency-key {key} to ask again "
              "without sending twice")


def maybe_done(err: errors.SmsSenderError) -> bool:
    """Whether a failed POST may have been done all the same: no answer (but a refused connection), the first try
    still being answered, or a server error that names no message (one that does is the message's recorded
    outcome; a ``*NotConfigured`` one says how the stage is set up)."""
    if isinstance(err, errors.ApiConnectionError):
        return not isinstance(err.__cause__, httpx.ConnectError)
    return isinstance(err, errors.ApiError) and (
        err.code in RETRIED_CONFLICTS or (err.status >= 500 and err.message_id is None and err.code not in NOT_RETRIED))


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, stdout: IO[str] | None = None,
         stderr: IO[str] | None = None, sleep: Callable[[float], None] | None = None,
         clock: Callable[[], float] | None = None) -> int:
    """Run ``sms`` with ``argv`` (default: the process's); answers the exit code, which the console script
    exits with. The keywords are for tests: the environment, the streams, the sleep and the clock."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    env = os.environ if env is None else env
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2), already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    out = Out(stdout, stderr, getattr(args, "json", False))
    ctx = Context(sleep or time.sleep, clock or time.monotonic)
    url, key = "", None
    try:
        stage = getattr(args, "stage", None)
        url = api_url(stage, getattr(args, "outputs", None), env)
        key = api_key(getattr(args, "key_file", None), stage, env)
        with Client(url, key, sleep=sleep, clock=clock) as client:
            code = args.handler(client, args, out, ctx)
    except UsageError as err:
        print(f"sms: {err}", file=stderr)
        code = EXIT_USAGE
    except errors.ApiError as err:
        if out.json:
            body = err.body if isinstance(err.body, dict) and "error" in err.body else {
                "error": {"code": err.code, "message": err.message}}
            print(json.dumps({"status": err.status, **body}, ensure_ascii=False), file=stderr)
        else:
            where = f" (field: {err.field})" if err.field else ""
            record = f" (message {err.message_id})" if err.message_id else ""
            print(f"sms: {err.status} {err.code or 'error'}: {err.message}{where}{record}", file=stderr)
            if isinstance(err, errors.AuthenticationError):  # the API's words are for HTTP: a header
                print(f"sms: {KEY_HINT if key is None else REFUSED_KEY_HINT}", file=stderr)
            elif err.code == "MediaTypeNotSupported" and getattr(args, "media", None) and not args.content_type:
                print(f"sms: {GUESSED_TYPE_HINT}", file=stderr)
            elif err.code == "IdempotencyKeyReused" and getattr(args, "given_key", None):
                print(f"sms: {REUSED_KEY_HINT.format(key=args.given_key)}", file=stderr)
            if getattr(args, "retry_key", None) and maybe_done(err):
                print(f"sms: {RETRY_HINT.format(key=args.retry_key)}", file=stderr)
        code = EXIT_API
    except errors.ApiConnectionError as err:
        hint = " (is `make dev` running?)" if url == "http://127.0.0.1:8000" else ""
        print(f"sms: cannot reach the API at {url}{hint}: {err}", file=stderr)
        if getattr(args, "retry_key", None) and maybe_done(err):
            print(f"sms: {RETRY_HINT.format(key=args.retry_key)}", file=stderr)
        code = EXIT_API
    except errors.WaitTimeout as err:
        print(f"sms: {err}", file=stderr)
        code = EXIT_TIMEOUT
    except ValueError as err:  # a setting the client refused before sending (a naive datetime, a media type)
        print(f"sms: {err}", file=stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    return code
