"""The two clients: the same operations (``_operations.Api``), the same request building and retry decisions
(``_core.Core``); only the loop that sends and sleeps differs."""
from __future__ import annotations

import asyncio
import mimetypes
import os
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import httpx

from . import errors
from ._core import Answer, Call, Core, Poll, Retries
from ._operations import Api, AsyncBase, SyncBase
from .models import BatchProgress, Export, Message, Page

FINAL_EXPORT = frozenset({"ready", "failed"})


def _media(source: str | os.PathLike[str] | bytes, content_type: str | None, filename: str | None
           ) -> tuple[bytes, str, str]:
    """The bytes, content type and file name of media given as a path or as bytes."""
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), filename or "media"
    else:
        path = Path(source)
        data, name = path.read_bytes(), filename or path.name
    content_type = content_type or mimetypes.guess_type(name)[0]
    if not content_type:
        raise ValueError(f"cannot tell the content type of {name!r}: give content_type (image/png, ...)")
    kind = PICTURES.get(content_type.lower())
    if kind and not data.startswith(kind[1]):
        raise ValueError(f"{name!r} does not hold a {kind[0]} picture (its content does not begin as a {kind[0]} "
                         f"file's does): give the picture itself")
    return data, content_type, name


# How each picture format begins. The API sees only the type the client names (from the file's name, unless given),
# so a file named .png that holds text would go out as a PNG: it is refused before anything is uploaded.
PICTURES = {"image/png": ("PNG", b"\x89PNG\r\n\x1a\n"), "image/jpeg": ("JPEG", b"\xff\xd8\xff"),
            "image/gif": ("GIF", (b"GIF87a", b"GIF89a"))}


def _upload_call(grant: Any, data: bytes, content_type: str, name: str) -> Call:
    return Call("uploadMedia", "POST", url=grant.upload.url, form=grant.upload.fields,
                file=(name, data, content_type))


class _Common:
    _core: Core

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self._core.base_url!r})"

    @property
    def base_url(self) -> str:
        return self._core.base_url or ""


class Client(_Common, Api, SyncBase):
    """The API, synchronously. ``Client()`` reads ``SMS_API_URL`` (default http://127.0.0.1:8000, ``make dev``)
    and ``SMS_API_KEY`` (sent as ``Authorization: Bearer``; none: keyless, as ``make dev`` allows).

    ``timeout``: seconds for one try's answer. ``retries``: how a call is tried again (``Retries``).
    ``clock``, ``sleep`` and ``random`` are there for tests. Use it as a context manager, or ``close()`` it."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 retries: Retries | None = None, http_client: httpx.Client | None = None,
                 clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None,
                 random: Callable[[], float] | None = None, wall: Callable[[], float] | None = None):
        self._core = Core(base_url, api_key, timeout, retries or Retries(), clock, random, wall)
        self._http = http_client or httpx.Client(follow_redirects=False)
        self._owns_http = http_client is None
        self._sleep = sleep or time.sleep

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _execute(self, call: Call) -> Any:
        core, started, attempt = self._core, self._core.clock(), 0
        while True:
            attempt += 1
            outcome: Answer | BaseException
            try:
                outcome = Answer.of(self._http.request(**core.request(call, core.attempt_timeout(started))))
            except httpx.TransportError as err:
                outcome = err
            wait = core.next_wait(call, attempt, started, outcome)
            if wait is None:
                return core.result(call, outcome, attempt)
            self._sleep(wait)

    def _paginate(self, page: Callable[[str | None], Call], start: str | None) -> Iterator[Any]:
        token = start
        while True:
            listing: Page[Any] = self._execute(page(token))
            yield from listing.items
            if not listing.next:
                return
            token = listing.next

    # -- more than one call ---------------------------------------------------------------------------------------
    def upload_media(self, source: str | os.PathLike[str] | bytes, content_type: str | None = None, *,
                     filename: str | None = None, idempotency_key: str | None = None) -> str:
        """Upload a file (a path, or bytes) for an MMS: ``POST /media``, then the presigned upload to S3 with
        every form field. Answers the ``s3://`` media URL ``send_mms`` takes."""
        data, content_type, name = _media(source, content_type, filename)
        grant = self.create_media_upload(content_type, len(data), idempotency_key=idempotency_key)
        self._execute(_upload_call(grant, data, content_type, name))
        return grant.media_url

    def wait_for_final(self, message_id: str, timeout: float = 120.0, *,
                       on_change: Callable[[Message], None] | None = None) -> Message:
        """Read the message until its status is final (delivered, failed, unknown, validated, received,
        canceled), waiting longer between reads each time; ``WaitTimeout`` after ``timeout`` seconds."""
        return self._poll(lambda: self.get_message(message_id), lambda m: m.final, timeout, on_change,
                          f"message {message_id}", key=lambda m: m.status)

    def wait_for_batch(self, batch_id: str, timeout: float = 3600.0, *,
                       on_change: Callable[[BatchProgress], None] | None = None) -> BatchProgress:
        """Read the batch's progress until it is ``done``."""
        return self._poll(lambda: self.get_batch(batch_id), lambda b: b.done, timeout, on_change,
                          f"batch {batch_id}", key=lambda b: tuple(sorted(b.counts().items())))

    def wait_for_export(self, export_id: str, timeout: float = 900.0) -> Export:
        """Read the export until it is ``ready`` or ``failed``."""
        return self._poll(lambda: self.get_export(export_id), lambda e: e.status in FINAL_EXPORT, timeout,
                          None, f"export {export_id}", key=lambda e: e.status)

    def _poll(self, read: Callable[[], Any], done: Callable[[Any], bool], timeout: float,
              on_change: Callable[[Any], None] | None, what: str, key: Callable[[Any], Any]) -> Any:
        poll, last = Poll(timeout, self._core.clock), object()
        while True:
            value = read()
            if on_change is not None and key(value) != last:
                last = key(value)
                on_change(value)
            if done(value):
                return value
            wait = poll.next()
            if wait is None:
                raise errors.WaitTimeout(f"{what} was not final after {timeout:g} s", value)
            self._sleep(wait)


class AsyncClient(_Common, Api, AsyncBase):
    """The API, asynchronously: every operation is awaited, ``iter_*`` are async iterators. Otherwise as
    ``Client`` (``sleep`` is an async function here)."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 retries: Retries | None = None, http_client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] | None = None, sleep: Callable[[float], Awaitable[None]] | None = None,
                 random: Callable[[], float] | None = None, wall: Callable[[], float] | None = None):
        self._core = Core(base_url, api_key, timeout, retries or Retries(), clock, random, wall)
        self._http = http_client or httpx.AsyncClient(follow_redirects=False)
        self._owns_http = http_client is None
        self._sleep = sleep or asyncio.sleep

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _execute(self, call: Call) -> Any:
        core, started, attempt = self._core, self._core.clock(), 0
        while True:
            attempt += 1
            outcome: Answer | BaseException
            try:
                outcome = Answer.of(await self._http.request(**core.request(call, core.attempt_timeout(started))))
            except httpx.TransportError as err:
                outcome = err
            wait = core.next_wait(call, attempt, started, outcome)
            if wait is None:
                return core.result(call, outcome, attempt)
            await self._sleep(wait)

    async def _paginate(self, page: Callable[[str | None], Call], start: str | None) -> AsyncIterator[Any]:
        token = start
        while True:
            listing: Page[Any] = await self._execute(page(token))
            for item in listing.items:
                yield item
            if not listing.next:
                return
            token = listing.next

    async def upload_media(self, source: str | os.PathLike[str] | bytes, content_type: str | None = None, *,
                           filename: str | None = None, idempotency_key: str | None = None) -> str:
        """As ``Client.upload_media``."""
        data, content_type, name = _media(source, content_type, filename)
        grant = await self.create_media_upload(content_type, len(data), idempotency_key=idempotency_key)
        await self._execute(_upload_call(grant, data, content_type, name))
        return grant.media_url

    async def wait_for_final(self, message_id: str, timeout: float = 120.0, *,
                             on_change: Callable[[Message], None] | None = None) -> Message:
        """As ``Client.wait_for_final``."""
        return await self._poll(lambda: self.get_message(message_id), lambda m: m.final, timeout, on_change,
                                f"message {message_id}", key=lambda m: m.status)

    async def wait_for_batch(self, batch_id: str, timeout: float = 3600.0, *,
                             on_change: Callable[[BatchProgress], None] | None = None) -> BatchProgress:
        """As ``Client.wait_for_batch``."""
        return await self._poll(lambda: self.get_batch(batch_id), lambda b: b.done, timeout, on_change,
                                f"batch {batch_id}", key=lambda b: tuple(sorted(b.counts().items())))

    async def wait_for_export(self, export_id: str, timeout: float = 900.0) -> Export:
        """As ``Client.wait_for_export``."""
        return await self._poll(lambda: self.get_export(export_id), lambda e: e.status in FINAL_EXPORT, timeout,
                                None, f"export {export_id}", key=lambda e: e.status)

    async def _poll(self, read: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float,
                    on_change: Callable[[Any], None] | None, what: str, key: Callable[[Any], Any]) -> Any:
        poll, last = Poll(timeout, self._core.clock), object()
        while True:
            value = await read()
            if on_change is not None and key(value) != last:
                last = key(value)
                on_change(value)
            if done(value):
                return value
            wait = poll.next()
            if wait is None:
                raise errors.WaitTimeout(f"{what} was not final after {timeout:g} s", value)
            await self._sleep(wait)
