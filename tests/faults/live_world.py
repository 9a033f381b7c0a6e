"""A live service for the fault suite: `serve` in this process, against real peers on
loopback (aiosmtpd, Prism behind the fault proxy), with short timeouts and backoffs so
an outage and its recovery fit in a test. Helpers read what the store says afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from fault_proxy import FaultProxy
from peers import free_port

from omniconsole.engine.serve import prepare, serve

WRITE_KEY = "wk-faults"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-not-real"

#: short enough for a test, long enough for a loaded 2-core machine
FAST_ENV = {
    "SMTP_TIMEOUT": "2",
    "TWILIO_TIMEOUT": "2",
    "OMNICONSOLE_BREAKER_RESET_SECONDS": "0.5",
    "OMNICONSOLE_RETRY_BASE_SECONDS": "0.2",
    "OMNICONSOLE_RETRY_MAX_SECONDS": "1",
    "OMNICONSOLE_RECONCILE_AFTER_SECONDS": "0.3",
    "OMNICONSOLE_RATE_TWILIO": "500",
    "OMNICONSOLE_RATE_EMAIL": "500",
}


class Arrivals(list[Any]):
    """A list that signals every append (the peers append what they receive)."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def append(self, item: Any) -> None:
        with self.changed:
            super().append(item)
            self.changed.notify_all()

    async def wait_until(
        self, predicate: Callable[[list[Any]], bool], what: str, timeout: float = 30.0
    ) -> None:
        """Wait (on the peer's signal, not a fixed sleep) until `predicate(self)`."""

        def wait() -> bool:
            with self.changed:
                return self.changed.wait_for(lambda: predicate(self), timeout)

        if not await asyncio.to_thread(wait):
            raise AssertionError(f"{what}: {len(self)} arrivals: {list(self)[-5:]}")


def env_for(port: int, smtp_port: int, twilio_url: str, **extra: str) -> dict[str, str]:
    """The environment of a service on `port` using the given peers."""
    return {
        "OMNICONSOLE_WRITE_KEY": WRITE_KEY,
        "OMNICONSOLE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_FROM": "hello@omni.example.com",
        "SMTP_STARTTLS": "false",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_SMS_FROM": "+15005550006",
        "TWILIO_API_BASE_URL": twilio_url,
        **FAST_ENV,
        **extra,
    }


@dataclass
class Service:
    """`serve` running in this process."""

    url: str
    db: Path
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def shutdown(self) -> None:
        """Stop as SIGTERM would: sends in flight finish and are committed."""
        self.stop.set()
        await asyncio.wait_for(self.task, 60)


async def start_service(db: Path, smtp: Any, proxy: FaultProxy, **extra: str) -> Service:
    """`serve` on a free port, using `smtp` (anything with a `.port`) and `proxy`."""
    port = free_port()
    env = env_for(port, smtp.port, proxy.url, **extra)
    config, http, templates = prepare(None, env)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve(config, http, templates, db, "127.0.0.1", port, env=env, ready=ready, stop=stop)
    )
    await asyncio.wait_for(ready.wait(), 60)
    return Service(f"http://127.0.0.1:{port}", db, stop, task)


def basic() -> str:
    return "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


async def post_batch(url: str, batch: list[dict[str, Any]]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{url}/v1/batch", json={"batch": batch}, headers={"Authorization": basic()}
        ) as r,
    ):
        body: dict[str, Any] = await r.json()
        assert r.status == 200, body
        return body


def customer(cid: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": cid, "messageId": f"{cid}:id", "traits": traits}


def track(cid: str, event: str, mid: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "userId": cid, "event": event, "messageId": mid, "properties": props}


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def ledger(db: Path) -> list[dict[str, Any]]:
    return [orjson.loads(r[0]) for r in query(db, "SELECT line FROM ledger ORDER BY id")]


def finals(db: Path) -> list[tuple[str, str, str, str | None]]:
    """(customer, channel, outcome, reason) of every final send line, sorted."""
    return sorted(
        (x["customer"], x["channel"], x["outcome"], x["reason"])
        for x in ledger(db)
        if x["outcome"] in ("sent", "failed")
    )


async def health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as r:
        body: dict[str, Any] = await r.json()
        return body


async def wait_health(
    url: str, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30.0
) -> dict[str, Any]:
    """Wait until /healthz satisfies `predicate` (the service's own word on its state;
    there is no event to wait on across the HTTP boundary, so it is asked every 50 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        body = await health(url)
        if predicate(body):
            return body
        if loop.time() > deadline:
            raise AssertionError(f"{what}: /healthz says {body}")
        await asyncio.sleep(0.05)


def waiting(body: dict[str, Any], channel: str, status: str = "retrying") -> int:
    """How many sends of `channel` wait in `status`, as /healthz reports the outbox."""
    return int(body.get("outbox", {}).get(channel, {}).get(status, 0))
