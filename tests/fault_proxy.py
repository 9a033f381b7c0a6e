"""A fault-injecting HTTP proxy in front of Prism: scripted answers, outages, stalls.

Prism validates requests against Twilio's spec but only knows the documented example
answers; this proxy sits in front of it to produce what a bad day looks like and to
record every request it saw:

- `script(...)` / `fail_always(...)`: Twilio's documented error answers (429 with code
  20429, 5xx, 400 with code 21610) instead of forwarding;
- `go_down()` / `come_back()`: connections refused, then accepted again (same port);
- `slow(seconds)`: every answer late by that much;
- `stall(seconds, count)`: the next `count` message creations are forwarded — Prism
  accepts them, Twilio has them — and then the answer is held past the client's
  timeout: an ambiguous send that landed;
- `drop(count)`: the next `count` message creations are read and the connection is
  closed without forwarding or answering: an ambiguous send that did not land;
- a memory of the messages created through it: Prism answers the Messages list with
  its fixed examples, so for `GET …/Messages.json` the proxy forwards (Prism validates
  the query) and fills the page with the messages it forwarded to that `To`, newest
  first, as Twilio's list shows them. Each created message gets a sid of its own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
from aiohttp import web

_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class Fault:
    """One scripted answer."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Seen:
    """A request the proxy received, and the status the client got."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    status: int
    forwarded: bool


def twilio_error(status: int, code: int, message: str) -> Fault:
    """An error in Twilio's legacy JSON error shape."""
    return Fault(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


@dataclass
class FaultProxy:
    """Serve on 127.0.0.1; see the module docstring for the faults it can play."""

    upstream: str
    seen: list[Seen] = field(default_factory=list)
    #: messages Twilio (Prism, through us) accepted, oldest first: the list's memory
    created: list[dict[str, Any]] = field(default_factory=list)
    _faults: deque[Fault] = field(default_factory=deque)
    _always: Fault | None = None
    _delay: float = 0.0
    _stalls: deque[float] = field(default_factory=deque)
    _drops: int = 0
    _busy: int = 0
    _idle: asyncio.Event | None = None
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    port: int = 0
    url: str = ""

    def script(self, *faults: Fault) -> None:
        """Answer the next len(faults) requests with these, in order."""
        self._faults.extend(faults)

    def fail_always(self, fault: Fault | None) -> None:
        """Answer every request with `fault` (None: forward again)."""
        self._always = fault

    def slow(self, seconds: float) -> None:
        """Answer every request `seconds` late (0: on time again)."""
        self._delay = seconds

    def stall(self, seconds: float, count: int = 1) -> None:
        """Forward the next `count` message creations, then hold each answer `seconds`."""
        self._stalls.extend([seconds] * count)

    def drop(self, count: int = 1) -> None:
        """Read the next `count` message creations, then hang up without an answer."""
        self._drops += count

    async def quiet(self) -> None:
        """Wait until no request is being handled (a client that died mid-request has
        had its request forwarded, or not, for good)."""
        if self._idle is not None:
            await self._idle.wait()

    async def start(self) -> None:
        """Listen on a free loopback port (the same one again after `go_down`)."""
        if self._idle is None:
            self._idle = asyncio.Event()
            self._idle.set()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.port}"
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def go_down(self) -> None:
        """Stop listening and drop every connection: clients get 'connection refused'."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def come_back(self) -> None:
        """Listen again, on the same port."""
        await self.start()

    async def close(self) -> None:
        """Stop serving and close the upstream session."""
        await self.go_down()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._idle is not None
        self._busy += 1
        self._idle.clear()
        try:
            return await self._answer(request)
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        form: dict[str, list[str]] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            for key, value in (await request.post()).items():
                form.setdefault(key, []).append(str(value))
        headers = {k: v for k, v in request.headers.items()}
        if self._delay:
            await asyncio.sleep(self._delay)
        fault = self._faults.popleft() if self._faults else self._always
        if fault is not None:
            self.seen.append(Seen(request.method, request.path, headers, form, fault.status, False))
            return web.Response(
                status=fault.status,
                text=json.dumps(fault.body),
                content_type="application/json",
            )
        creates = request.method == "POST" and request.path.endswith("/Messages.json")
        if creates and self._drops:
            self._drops -= 1
            self.seen.append(Seen(request.method, request.path, headers, form, 0, False))
            assert request.transport is not None
            request.transport.close()  # the request left; no answer, and nothing landed
            raise asyncio.CancelledError
        assert self._session is not None
        forward_headers = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=raw,
            headers=forward_headers,
        ) as upstream:
            body = await upstream.read()
            status = upstream.status
            content_type = upstream.content_type
        if creates and status == 201:
            body = self._remember(body, form)
        elif request.method == "GET" and request.path.endswith("/Messages.json") and status == 200:
            body = self._list(body, request.query.get("To"))
        self.seen.append(Seen(request.method, request.path, headers, form, status, True))
        if creates and self._stalls:
            await asyncio.sleep(self._stalls.popleft())  # Twilio has it; the answer is late
        return web.Response(status=status, body=body, content_type=content_type)

    def _remember(self, body: bytes, form: dict[str, list[str]]) -> bytes:
        """Make Prism's example creation the message that was asked for, and keep it."""
        message = json.loads(body)
        first = {k: v[0] for k, v in form.items() if v}
        message.update(
            sid="SM" + uuid.uuid4().hex,
            to=first.get("To"),
            body=first.get("Body"),
            status="queued",
            direction="outbound-api",
            date_created=format_datetime(datetime.now(UTC)),
            date_sent=None,
        )
        if "From" in first:
            message["from"] = first["From"]
        if "MessagingServiceSid" in first:
            message["messaging_service_sid"] = first["MessagingServiceSid"]
        self.created.append(message)
        return json.dumps(message).encode()

    def _list(self, body: bytes, to: str | None) -> bytes:
        """Prism's page of the Messages list, holding what was created for `to`."""
        page = json.loads(body)
        page["messages"] = [m for m in reversed(self.created) if to is None or m["to"] == to]
        page["end"] = max(0, len(page["messages"]) - 1)
        page["next_page_uri"] = None
        return json.dumps(page).encode()
