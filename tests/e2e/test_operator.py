"""Agent actions through the running service: `serve`'s operator route, its client, and
the console's opt-out / opt-in keys — never a write to the store by the console."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
import pytest_asyncio
from peers import free_port

from omniconsole.adapters.http.operator_client import OperatorClient
from omniconsole.domain.operator import OperatorError
from omniconsole.engine.serve import prepare, serve
from omniconsole.tui.app import ConsoleApp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))
from tui_support import plain, wait_for

WRITE_KEY = "wk-operator-test"
OPERATOR_KEY = "ok-operator-test-not-real"


@dataclass
class Service:
    url: str
    db: Path
    stop: asyncio.Event
    task: asyncio.Task[None]


async def start(tmp_path: Path, operator_key: str | None) -> Service:
    port = free_port()
    env = {"OMNICONSOLE_WRITE_KEY": WRITE_KEY}
    if operator_key is not None:
        env["OMNICONSOLE_OPERATOR_KEY"] = operator_key
    config, http, templates = prepare(None, env)
    ready, stop = asyncio.Event(), asyncio.Event()
    db = tmp_path / "live.db"
    task = asyncio.create_task(
        serve(config, http, templates, db, "127.0.0.1", port, env=env, ready=ready, stop=stop)
    )
    await asyncio.wait_for(ready.wait(), 30)
    return Service(f"http://127.0.0.1:{port}", db, stop, task)


@pytest_asyncio.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    running = await start(tmp_path, OPERATOR_KEY)
    async with aiohttp.ClientSession() as session, session.post(
        f"{running.url}/v1/identify",
        json={"userId": "c-1", "traits": {"email": "ana@example.com",
                                           "phone": "+14155550101", "timezone": "UTC"}},
        headers={"Authorization": aiohttp.encode_basic_auth(WRITE_KEY, "")},
    ) as response:  # fmt: skip
        assert response.status == 200, await response.text()
    yield running
    running.stop.set()
    await asyncio.wait_for(running.task, 30)


def consent_events(db: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [
            orjson.loads(row[0])
            for row in conn.execute(
                "SELECT payload FROM events WHERE name IN ('Unsubscribed', 'Subscribed') ORDER BY id"
            )
        ]
    finally:
        conn.close()


async def post(url: str, body: object, key: str | None) -> tuple[int, dict[str, object]]:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/operator/v1/consent", json=body, headers=headers) as r,
    ):
        return r.status, await r.json()


BODY = {"customer": "c-1", "channel": "sms", "action": "opt_out", "agent": "maria",
        "request_id": "r-1"}  # fmt: skip


@pytest.mark.asyncio
async def test_an_agents_opt_out_is_recorded_as_an_event_naming_the_agent(
    service: Service,
) -> None:
    status, answer = await post(service.url, BODY, OPERATOR_KEY)
    assert status == 200, answer
    assert answer["duplicate"] is False
    [event] = consent_events(service.db)
    assert event["event"] == "Unsubscribed"
    assert event["properties"] == {"channel": "sms", "source": "operator", "agent": "maria"}
    again_status, again = await post(service.url, BODY, OPERATOR_KEY)  # a retry
    assert (again_status, again["duplicate"]) == (200, True)
    assert len(consent_events(service.db)) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("key", "status"), [(None, 401), ("wrong-key", 401), (OPERATOR_KEY + "x", 401)]
)
async def test_without_the_operator_key_nothing_is_recorded(
    service: Service, key: str | None, status: int
) -> None:
    got, answer = await post(service.url, BODY, key)
    assert got == status
    assert OPERATOR_KEY not in orjson.dumps(answer).decode()
    assert consent_events(service.db) == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "pigeon"}, "channel"),
        ({"action": "maybe"}, "action"),
        ({"agent": ""}, "agent"),
        ({"customer": 7}, "customer"),
    ],
)
async def test_a_bad_request_is_a_400_naming_the_field(
    service: Service, change: dict[str, object], field: str
) -> None:
    status, answer = await post(service.url, {**BODY, **change}, OPERATOR_KEY)
    assert status == 400
    assert f"'{field}'" in str(answer["message"])


@pytest.mark.asyncio
async def test_without_an_operator_key_configured_agent_actions_are_off(tmp_path: Path) -> None:
    running = await start(tmp_path, None)
    try:
        status, answer = await post(running.url, BODY, "anything")
        assert status == 403 and answer["code"] == "disabled"
    finally:
        running.stop.set()
        await asyncio.wait_for(running.task, 30)


@pytest.mark.asyncio
async def test_the_client_says_why_the_service_refused(service: Service) -> None:
    client = OperatorClient(service.url, "wrong-key", "maria")
    with pytest.raises(OperatorError, match="refused the operator key"):
        await asyncio.to_thread(client.record_consent, "c-1", "sms", opt_in=False)
    assert "wrong-key" not in repr(client)
    nowhere = OperatorClient(f"http://127.0.0.1:{free_port()}", OPERATOR_KEY, "maria")
    with pytest.raises(OperatorError, match="cannot reach the service"):
        await asyncio.to_thread(nowhere.record_consent, "c-1", "sms", opt_in=False)


@pytest.mark.asyncio
async def test_an_agent_opts_a_customer_out_from_the_console(service: Service) -> None:
    """`o` on the customer pane, pick sms: the service records it naming the agent, and
    the pane shows the opt-out once the engine has committed it."""
    operator = OperatorClient(service.url, OPERATOR_KEY, "maria")
    app = ConsoleApp(service.db, poll_interval=0.05, operator=operator)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"customer c-1", "enter")
        await wait_for(
            pilot,
            lambda: (
                app.latest is not None
                and app.latest.customer is not None
                and app.latest.customer.record is not None
            ),
        )
        await pilot.press("o")
        await pilot.pause()
        await pilot.press("down", "enter")  # email, then sms
        await wait_for(pilot, lambda: len(consent_events(service.db)) == 1, timeout=20)

        def consents() -> str:
            return plain(app.screen.query_one("#customer-consents"))

        await wait_for(pilot, lambda: "opted out of sms" in consents(), timeout=20)
    [event] = consent_events(service.db)
    assert event["properties"] == {"channel": "sms", "source": "operator", "agent": "maria"}
