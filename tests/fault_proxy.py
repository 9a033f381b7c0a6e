"""A fault-injecting HTTP proxy: scripted answers for the next N requests, else forward.

Prism validates requests against Twilio's spec but only knows the 201 answer; this
proxy sits in front of it to produce Twilio's documented error answers (429 with code
20429, 5xx, 400 with code 21610) and records every request it saw.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
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
    """Serve on 127.0.0.1; `script(...)` faults; `fail_always(...)` for a dead upstream."""

    upstream: str
    seen: list[Seen] = field(default_factory=list)
    _faults: deque[Fault] = field(default_factory=deque)
    _always: Fault | None = None
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    url: str = ""

    def script(self, *faults: Fault) -> None:
        """Answer the next len(faults) requests with these, in order."""
        self._faults.extend(faults)

    def fail_always(self, fault: Fault | None) -> None:
        """Answer every request with `fault` (None: forward again)."""
        self._always = fault

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Stop serving and close the upstream session."""
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        form: dict[str, list[str]] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            for key, value in (await request.post()).items():
                form.setdefault(key, []).append(str(value))
        headers = {k: v for k, v in request.headers.items()}
        fault = self._faults.popleft() if self._faults else self._always
        if fault is not None:
            self.seen.append(Seen(request.method, request.path, headers, form, fault.status, False))
            return web.Response(
                status=fault.status,
                text=json.dumps(fault.body),
                content_type="application/json",
            )
        assert self._session is not None
        forward_headers = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=raw,
            headers=forward_headers,
        ) as upstream:
            body = await upstream.read()
            self.seen.append(
                Seen(request.method, request.path, headers, form, upstream.status, True)
            )
            return web.Response(
                status=upstream.status,
                body=body,
                content_type=upstream.content_type,
            )
