"""kill -9 under load: nothing acknowledged is lost, every decided send is delivered, and
a crash repeats at most what was on the wire.

`omniconsole serve` runs as a subprocess against real peers on loopback (aiosmtpd, and
Prism behind the fault proxy), both in this process so they can count what reaches them
per message id. A bounded load of Segment batches runs against it; after each round the
service is killed with SIGKILL mid-stream, then restarted on the same store. In the end
the service drains and stops, and the store and the peers are compared.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from fault_proxy import FaultProxy
from live_world import Arrivals, basic, env_for, query, wait_health
from peers import LoopbackController, SmtpRecorder, free_port

pytestmark = pytest.mark.faults

KILLS = 4
CUSTOMERS_PER_ROUND = 160  # each: an identify and a transactional trigger (one send)
CONCURRENCY = 6  # sends in flight per channel: the bound on what a kill can repeat


@dataclass
class Load:
    """What the load generator sent and what the service acknowledged (a 200)."""

    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)


class Server:
    """`omniconsole serve` as a subprocess; `ready` is set when it says it listens."""

    def __init__(self, db: Path, port: int, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "omniconsole", "serve", "--db", str(db), "--port", str(port)],
            env={**os.environ, **env},
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.ready = threading.Event()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            if "listening on" in line:
                self.ready.set()
        self.ready.set()  # exited: let the waiter look

    async def wait_ready(self) -> None:
        assert await asyncio.to_thread(self.ready.wait, 60), "serve did not start"
        assert self.process.poll() is None, "".join(self.log[-20:])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._close()

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(60)
        self._close()
        return code

    def _close(self) -> None:
        if self.process.stderr is not None:
            self.process.stderr.close()


async def post_load(url: str, load: Load, round_no: int, customers: int) -> None:
    """Batches of 10 (five customers), four at a time, until done or the server dies."""

    async def poster(worker: int, session: aiohttp.ClientSession) -> None:
        for first in range(worker * 5, customers, 20):
            batch: list[dict[str, Any]] = []
            for n in range(first, min(first + 5, customers)):
                who = f"r{round_no}-{n}"
                if n % 2:  # email-only: an order receipt by email
                    traits, trigger = {"email": f"{who}@example.com"}, "Order Completed"
                else:  # phone-only: a fraud alert by SMS
                    traits, trigger = {"phone": f"+1415{round_no}{n:06d}"}, "Fraud Suspected"
                batch.append(
                    {"type": "identify", "userId": who, "messageId": f"{who}:id", "traits": traits}
                )
                batch.append(
                    {
                        "type": "track",
                        "userId": who,
                        "event": trigger,
                        "messageId": f"{who}:t",
                        "properties": {},
                    }
                )
            ids = {item["messageId"] for item in batch}
            load.sent |= ids
            try:
                async with session.post(
                    f"{url}/v1/batch", json={"batch": batch}, headers={"Authorization": basic()}
                ) as response:
                    if response.status != 200:
                        return
                    body = await response.json()
            except (TimeoutError, aiohttp.ClientError, OSError):
                return  # killed mid-request: not acknowledged
            assert body["rejected"] == [], body
            load.acknowledged |= ids

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(poster(w, session) for w in range(4)))


def our_id(message_id_header: str) -> str:
    """Our message id back from an email's Message-ID (`=HH` escapes, see email_smtp)."""
    local = message_id_header.strip().strip("<>").rsplit("@", 1)[0]
    return re.sub(
        rb"=([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), local.encode()
    ).decode()


def delivered(smtp: SmtpRecorder, proxy: FaultProxy) -> Counter[str]:
    """How many times each of our message ids reached a provider."""
    counts: Counter[str] = Counter()
    for envelope in list(smtp.envelopes):
        header = envelope.content.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0]
        counts[our_id(header.decode())] += 1
    for seen in list(proxy.seen):
        if seen.method == "POST" and seen.forwarded and seen.status == 201:
            callback = seen.form["StatusCallback"][0]
            counts[parse_qs(urlsplit(callback).query)["message_id"][0]] += 1
    return counts


def waiting_sends(db: Path) -> set[str]:
    """Outbox rows with no committed outcome (what a restart sends again)."""
    rows = query(db, "SELECT message_id FROM outbox WHERE status IN ('pending', 'retrying')")
    return {r[0] for r in rows}


@pytest.mark.asyncio
async def test_kill_9_under_load_loses_nothing_and_repeats_at_most_what_was_on_the_wire(
    tmp_path: Path, twilio_proxy: FaultProxy
) -> None:
    smtp = SmtpRecorder()
    smtp.envelopes = Arrivals()
    controller = LoopbackController(smtp, hostname="127.0.0.1", port=0)
    controller.start()
    db, port = tmp_path / "live.db", free_port()
    env = env_for(port, controller.port, twilio_proxy.url,
                  OMNICONSOLE_DELIVERY_CONCURRENCY=str(CONCURRENCY),
                  OMNICONSOLE_RATE_TWILIO="1000", OMNICONSOLE_RATE_EMAIL="1000")  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    load = Load()
    on_the_wire: list[set[str]] = []  # per kill: sent to a provider, outcome not committed
    try:
        for round_no in range(KILLS + 1):
            server = Server(db, port, env)
            await server.wait_ready()
            posting = asyncio.create_task(post_load(url, load, f"r{round_no}", CUSTOMERS_PER_ROUND))
            if round_no == KILLS:
                await posting
                await wait_health(
                    url,
                    lambda h: (
                        h["in_flight"] == 0
                        and not any(
                            sum(v for k, v in c.items() if k != "oldest")
                            for c in h["outbox"].values()
                        )
                    ),
                    "the outbox did not drain",
                    timeout=120,
                )
                assert server.terminate() == 0, "".join(server.log[-20:])
                break
            # kill it mid-stream: once sends are flowing, while batches are still posted
            flowing = len(smtp.envelopes) + 5
            await smtp.envelopes.wait_until(lambda e, n=flowing: len(e) >= n, "no email went", 60)
            server.kill()
            await asyncio.wait_for(posting, 60)
            await asyncio.wait_for(twilio_proxy.quiet(), 30)  # what it had, it has
            received = set(delivered(smtp, twilio_proxy))
            wire = waiting_sends(db) & received
            assert len(wire) <= 2 * CONCURRENCY, f"kill {round_no}: {len(wire)} on the wire"
            on_the_wire.append(wire)
    finally:
        controller.stop()

    stored = {r[0] for r in query(db, "SELECT message_id FROM events WHERE message_id IS NOT NULL")}
    assert load.acknowledged <= stored, "an acknowledged event was lost"
    assert stored <= load.sent
    decided = {r[0]: r[1] for r in query(db, "SELECT message_id, status FROM outbox")}
    counts = delivered(smtp, twilio_proxy)
    assert set(decided.values()) == {"sent"}
    assert set(decided) == set(counts), "a decided send was never delivered"
    duplicated = {mid: n - 1 for mid, n in counts.items() if n > 1}
    assert set(duplicated) <= set().union(*on_the_wire), "a repeat that was not on the wire"
    finals = Counter(
        r[0] for r in query(db, "SELECT message_id FROM ledger WHERE outcome IN ('sent', 'failed')")
    )
    assert finals == Counter(set(decided)), "each send has exactly one final ledger line"
    assert query(db, "SELECT count(*) FROM outbox WHERE settled = 0") == [(0,)]
    print(
        f"\nkill -9 x{KILLS}: acknowledged {len(load.acknowledged)} stored "
        f"{len(stored & load.sent)} (sent {len(load.sent)}); decided {len(decided)} "
        f"delivered {len(counts)} duplicated {sum(duplicated.values())} "
        f"(on the wire at the kills: {[len(w) for w in on_the_wire]})"
    )
