"""`serve` at scale: two stateless ingest processes in front of live partitions on a
2-node Ray cluster over PostgreSQL pass the live end-to-end path — sign-up → welcome
email (aiosmtpd); fraud → SMS (Twilio's spec, through Prism); a signed STOP → the next
alert by email, for every profile holding the number, in whichever partition —
whichever ingest process each request reaches. Each partition runs the hardened live
engine: its sends leave from the outbox of its part, paced by the cluster's one bucket
per provider and channel; once the partitions are gone, ingest and /healthz say 503.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from fault_proxy import FaultProxy
from peers import LoopbackController, SmtpRecorder, free_port
from twilio.request_validator import RequestValidator

from omniconsole.adapters.store import store_at

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]

WRITE_KEY = "wk-cluster"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "cluster-auth-token-not-real"
MiB = 1 << 20


class Arrivals(list[Any]):
    """A list that signals every append (the peers append what they receive)."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 60.0) -> None:
        """Wait on the peer's signal (no fixed sleep) until `count` items arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self) < count:
            self.changed.clear()
            if len(self) >= count:
                break
            left = deadline - loop.time()
            if left <= 0 or not await asyncio.to_thread(self.changed.wait, left):
                raise AssertionError(f"expected {count} arrivals, got {len(self)}: {list(self)}")


@pytest.fixture
def two_nodes(
    smtp_server: LoopbackController, twilio_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """A 2-node cluster whose nodes have the channels' settings in their environment
    (the partitions send from there, as on a real cluster where `ray start` runs with
    them)."""
    from ray.cluster_utils import Cluster

    for key, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_FROM": "hello@omni.example.com",
        "SMTP_STARTTLS": "false",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_SMS_FROM": "+15005550006",
        "TWILIO_API_BASE_URL": twilio_proxy.url,
        "RAY_USAGE_STATS_ENABLED": "0",
    }.items():
        monkeypatch.setenv(key, value)
    node = {"num_cpus": 1, "object_store_memory": 80 * MiB}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


@dataclass
class Ingest:
    url: str
    process: asyncio.subprocess.Process


async def start_ingest(
    address: str, db: str, config: Path | None = None, port: int | None = None
) -> Ingest:
    """`omniconsole serve --ray ADDRESS` in a process of its own; ready once it listens.
    `config`: a configuration folder (None: the shipped one)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMNICONSOLE_WRITE_KEY": WRITE_KEY, "OMNICONSOLE_PUBLIC_URL": url,
           "TWILIO_AUTH_TOKEN": AUTH_TOKEN}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "omniconsole", "serve", "--db", db, "--ray", address,
        "--port", str(port), "--partitions", "2",
        *(["--config", str(config)] if config is not None else []),
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), 120)
        if not line:
            raise AssertionError("ingest process exited:\n" + b"".join(seen).decode())
        seen.append(line)
        if b"listening on" in line:
            break
    asyncio.get_running_loop().create_task(process.stderr.read())  # keep the pipe drained
    return Ingest(url, process)


@pytest_asyncio.fixture
async def ingests(two_nodes: Any, pg_url: str) -> AsyncIterator[list[Ingest]]:
    """Two ingest processes, started one after the other (the first starts the
    partitions); at the end both stop and the partitions are stopped (`--stop`)."""
    async for started in two_ingests(two_nodes, pg_url, None):
        yield started


EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config" / "examples" / "channels"


@pytest.fixture
def public_port(monkeypatch: pytest.MonkeyPatch) -> int:
    """The first ingest process's port, as the nodes' public URL: the partitions' email
    adapter signs List-Unsubscribe links from its node's environment, as on a real
    cluster where `ray start` runs with the service's variables."""
    port = free_port()
    monkeypatch.setenv("OMNICONSOLE_PUBLIC_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OMNICONSOLE_WRITE_KEY", WRITE_KEY)
    return port


@pytest_asyncio.fixture
async def channel_ingests(
    public_port: int, two_nodes: Any, pg_url: str
) -> AsyncIterator[list[Ingest]]:
    """As `ingests`, with `config/examples/channels` (tracking and topics on)."""
    async for started in two_ingests(two_nodes, pg_url, EXAMPLE_CONFIG, public_port):
        yield started


async def two_ingests(
    two_nodes: Any, pg_url: str, config: Path | None, first_port: int | None = None
) -> AsyncIterator[list[Ingest]]:
    started: list[Ingest] = []
    try:
        for k in range(2):
            port = first_port if k == 0 else None
            started.append(await start_ingest(two_nodes.address, pg_url, config, port))
        yield started
    finally:
        for ingest in started:
            with contextlib.suppress(ProcessLookupError):
                ingest.process.terminate()
            await asyncio.wait_for(ingest.process.wait(), 60)
        _, err = await stop_partitions(pg_url, two_nodes.address)
        assert b"live partitions" in err, err  # 2, or 0 if the test stopped them


async def stop_partitions(db: str, address: str) -> tuple[int | None, bytes]:
    """`omniconsole serve --ray ADDRESS --stop`: its exit status and stderr."""
    stop = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "omniconsole", "serve", "--db", db, "--ray", address, "--stop",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(stop.communicate(), 120)
    assert stop.returncode == 0, err
    return stop.returncode, err


async def slots_taken(address: str) -> dict[str, float]:
    """Send slots each of the cluster's rate-limit buckets handed out, asked from a
    driver of its own (as an operator would)."""
    script = (
        "import json, ray\n"
        f"ray.init(address={address!r}, logging_level='error', log_to_driver=False)\n"
        "names = ['email_smtp-email', 'twilio-sms']\n"
        "got = {n: ray.get(ray.get_actor('rate-' + n, namespace='omniconsole').served.remote())"
        " for n in names}\n"
        "print(json.dumps(got))\n"
    )
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(probe.communicate(), 120)
    assert probe.returncode == 0, err
    return dict(orjson.loads(out.splitlines()[-1]))


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


async def post_batch(session: aiohttp.ClientSession, url: str, batch: list[dict[str, Any]]) -> None:
    async with session.post(f"{url}/v1/batch", json={"batch": batch},
                            headers={"Authorization": basic(WRITE_KEY)}) as response:  # fmt: skip
        assert response.status == 200, await response.text()


def track(customer: str, event: str, mid: str) -> dict[str, Any]:
    return {"type": "track", "userId": customer, "event": event, "messageId": mid,
            "properties": {}}  # fmt: skip


@pytest.mark.asyncio
async def test_two_ingest_processes_on_a_two_node_cluster_pass_the_live_path(
    ingests: list[Ingest],
    two_nodes: Any,
    smtp_recorder: SmtpRecorder,
    twilio_proxy: FaultProxy,
    pg_url: str,
    tmp_path: Path,
) -> None:
    smtp_recorder.envelopes = Arrivals()
    twilio_proxy.seen = Arrivals()
    first, second = ingests
    phone = "+14155550101"
    identify = {
        "type": "identify", "userId": "live-1", "messageId": "m-1",
        "traits": {"email": "ana@example.com", "phone": phone, "first_name": "Ana"},
    }  # fmt: skip
    # live-4 holds the same number, and lives in the other partition (crc32 % 2)
    sharer = {
        "type": "identify", "userId": "live-4", "messageId": "m-5",
        "traits": {"email": "bo@example.com", "phone": phone, "first_name": "Bo"},
    }  # fmt: skip
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{first.url}/healthz") as response:
            health = await response.json()
            assert response.status == 200 and health["accepting"] is True
            assert [p["partition"] for p in health["partitions"]] == [0, 1]

        # sign-up, through the first ingest process → the welcome email
        await post_batch(session, first.url, [identify, track("live-1", "Signed Up", "m-2")])
        await smtp_recorder.envelopes.wait_for(1)
        assert smtp_recorder.envelopes[0].rcpt_tos == ["ana@example.com"]
        await post_batch(session, second.url, [sharer])

        # fraud, through the second → an SMS that Twilio's own schema accepts
        await post_batch(session, second.url, [track("live-1", "Fraud Suspected", "m-3")])
        await twilio_proxy.seen.wait_for(1)
        assert twilio_proxy.seen[0].status == 201
        assert twilio_proxy.seen[0].form["To"] == [phone]

        # STOP, signed as Twilio signs it, to the second: both holders opt out
        path = "/webhooks/twilio/inbound"
        form = {"From": phone, "To": "+15005550006", "Body": "STOP",
                "MessageSid": "SM" + "2" * 32, "AccountSid": ACCOUNT_SID}  # fmt: skip
        signature = RequestValidator(AUTH_TOKEN).compute_signature(second.url + path, form)
        async with session.post(second.url + path, data=form,
                                headers={"X-Twilio-Signature": signature}) as response:  # fmt: skip
            assert response.status == 200

        # the next alerts, through the first: no SMS any more, an email instead — for
        # the customer who sent STOP and for the other one holding the number
        await post_batch(session, first.url, [track("live-1", "Fraud Suspected", "m-4"),
                                              track("live-4", "Fraud Suspected", "m-6")])  # fmt: skip
        await smtp_recorder.envelopes.wait_for(3)
        assert len(twilio_proxy.seen) == 1, "an SMS went out after STOP"
        assert sorted(e.rcpt_tos[0] for e in smtp_recorder.envelopes[1:]) == [
            "ana@example.com", "bo@example.com"]  # fmt: skip

        # a retry of an event already committed is a duplicate, wherever it arrives
        await post_batch(session, second.url, [track("live-1", "Fraud Suspected", "m-4")])

        # every send took its slot from the cluster's bucket of its provider
        slots = await slots_taken(two_nodes.address)
        assert slots["email_smtp-email"] >= 3 and slots["twilio-sms"] >= 1, slots

        # the partitions stopped: ingest refuses (the sender retries), /healthz says so
        _, err = await stop_partitions(pg_url, two_nodes.address)
        assert b"stopped 2 live partitions" in err, err
        batch = {"batch": [track("live-1", "Fraud Suspected", "m-7")]}
        async with session.post(f"{first.url}/v1/batch", json=batch,
                                headers={"Authorization": basic(WRITE_KEY)}) as response:  # fmt: skip
            assert response.status == 503
        async with session.get(f"{first.url}/healthz") as response:
            assert response.status == 503
            assert (await response.json())["accepting"] is False

    with contextlib.closing(store_at(pg_url).reader()) as reader:
        reader.export_ledger(tmp_path / "ledger.jsonl")
        # m-1..m-6 and the STOP for each holder of the number, nothing twice
        assert len(reader.message_ids()) == 8
        assert set(reader.customers_for_phone(phone)) == {"live-1", "live-4"}
    ledger = [orjson.loads(x) for x in (tmp_path / "ledger.jsonl").read_bytes().splitlines()]
    sent = [(x["customer"], x["journey"], x["step"], x["channel"]) for x in ledger
            if x["outcome"] == "sent"]  # fmt: skip
    assert ("live-1", "onboarding", "welcome", "email") in sent
    alerts = sorted(x for x in sent if x[1] == "fraud_alert")
    assert alerts == [("live-1", "fraud_alert", "alert", "email"),
                      ("live-1", "fraud_alert", "alert", "sms"),
                      ("live-4", "fraud_alert", "alert", "email")]  # fmt: skip


def stored_events(url: str, name: str) -> list[dict[str, Any]]:
    """The events named `name` that the partitions stored, from both parts' schemas."""
    import psycopg

    rows: list[Any] = []
    with psycopg.connect(url) as conn:
        for schema in ("omniconsole_p0", "omniconsole_p1"):
            rows += conn.execute(f'SELECT payload FROM "{schema}".events').fetchall()
    events = [orjson.loads(r[0]) for r in rows]
    return [e for e in events if e.get("event") == name]


@pytest.mark.asyncio
async def test_tracked_links_and_the_preference_page_work_through_any_ingest_process(
    channel_ingests: list[Ingest], smtp_recorder: SmtpRecorder, pg_url: str, tmp_path: Path
) -> None:
    """With the example config, a partition's welcome email carries signed redirects and
    a pixel that the *other* ingest process accepts; the preference page, opened there,
    reads the customer's topics from the partition's part of the store; turning `deals`
    off on email withdraws consent for the next price drop."""
    import email
    import email.policy
    import re

    smtp_recorder.envelopes = Arrivals()
    first, second = channel_ingests
    identify = {"type": "identify", "userId": "live-9", "messageId": "p-1",
                "traits": {"email": "cy@example.com", "first_name": "Cy"}}  # fmt: skip
    async with aiohttp.ClientSession() as session:
        await post_batch(session, first.url, [identify, track("live-9", "Signed Up", "p-2")])
        await smtp_recorder.envelopes.wait_for(1)
        mail = email.message_from_bytes(
            smtp_recorder.envelopes[0].content, policy=email.policy.default
        )
        html_part = mail.get_body(("html",))
        assert html_part is not None
        html = html_part.get_content()
        (click,) = re.findall(rf'href="({re.escape(first.url)}/c/[\w-]+)"', html)
        (pixel,) = re.findall(rf'src="({re.escape(first.url)}/o/[\w-]+)"', html)
        # the links name the first process's URL; any ingest process verifies them
        async with session.get(pixel.replace(first.url, second.url)) as response:
            assert response.status == 200 and response.content_type == "image/gif"
        async with session.get(click.replace(first.url, second.url),
                               allow_redirects=False) as response:  # fmt: skip
            assert response.status == 302
            assert response.headers["Location"] == "https://app.example.com/login"

        unsubscribe = re.search(r"<(http[^>]+/unsubscribe\?[^>]+)>", mail["List-Unsubscribe"])
        assert unsubscribe is not None
        async with session.get(unsubscribe.group(1).replace(first.url, second.url)) as response:
            assert response.status == 200
            page = await response.text()
        assert 'value="One-Click"' in page and "Price drops" in page
        action = re.search(r'<form method="post" action="(/preferences\?[^"]+)"', page)
        assert action is not None
        kept = {name: "on" for name in re.findall(r'name="([a-z_]+:[a-z_]+)" checked', page)}
        assert "deals:email" in kept, "the page shows what the partition stored"
        del kept["deals:email"]
        async with session.post(second.url + action.group(1).replace("&amp;", "&"),
                                data=kept) as response:  # fmt: skip
            assert response.status == 200 and "Saved." in await response.text()
        # read back through the first process: the page shows the topic off
        async with session.get(unsubscribe.group(1)) as response:
            again = await response.text()
        assert 'name="deals:email" checked' not in again and 'name="deals:email"' in again

        await post_batch(session, first.url, [track("live-9", "Price Dropped", "p-3")])
    # a click is held a moment (a scanner fetches every link at once); an ingest process
    # that stops records what it holds
    second.process.terminate()
    assert await asyncio.wait_for(second.process.wait(), 60) == 0

    welcome = "live-9:onboarding:1:welcome"
    opened = stored_events(pg_url, "Message Opened")
    clicked = stored_events(pg_url, "Message Clicked")
    assert [e["properties"]["message_id"] for e in opened] == [welcome]
    assert [e["properties"]["link"] for e in clicked] == ["https://app.example.com/login"]
    with contextlib.closing(store_at(pg_url).reader()) as reader:
        reader.export_ledger(tmp_path / "ledger.jsonl")
    ledger = [orjson.loads(x) for x in (tmp_path / "ledger.jsonl").read_bytes().splitlines()]
    (drop,) = [x for x in ledger if x["journey"] == "price_drop"]
    assert (drop["outcome"], drop["reason"]) == ("suppressed", "consent:topic:deals")
