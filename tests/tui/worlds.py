"""Worlds the console tests read: small event logs replayed through the real engine.

The story a support agent might meet (times UTC, January 2026):

- c-1 Ana (New York) signs up late at night: the welcome email goes out at once; a
  price drop next afternoon is pushed, a second one finds the all-channel cap full
  (suppressed); she texts STOP (opted out of sms); her day-3 nudge falls in quiet
  hours on WhatsApp and is deferred to 08:00 local, then sent.
- c-2 Bo (London) opens his welcome email; his day-3 nudge goes by sms — a handoff
  from that email — and he activates (converted).
- c-3 Cy opens a support ticket: the price drop that follows is suppressed; one of his
  events arrives late.
- c-4 Di orders: the receipt goes by email and is delivered.
- c-5 Ed views a product, then orders: the recommendation is skipped.
- c-6 Fay has no address at all: her fraud alert finds no channel (unreachable).
- c-7 Gil's welcome email bounces: it is re-sent once in the app (a fallback).

`replay_world` writes a log and replays it with `run_replay` into a store, as
`omniconsole replay` would; the tests only ever read what the engine wrote.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from omniconsole.engine.replay import ReplayOptions, run_replay

#: the lift the `planted` world plants in onboarding (treatment rate minus control rate)
PLANTED_LIFT = 0.08

#: where the story's replays stop the clock (c-1's day-7 nudge is still pending)
UNTIL = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def identify(customer: str, at: str, **traits: Any) -> dict[str, Any]:
    """An identify call."""
    return {"type": "identify", "userId": customer, "timestamp": at, "traits": traits,
            "messageId": f"id-{customer}-{at}"}  # fmt: skip


def track(customer: str, at: str, event: str, **properties: Any) -> dict[str, Any]:
    """A track call."""
    return {"type": "track", "userId": customer, "event": event, "timestamp": at,
            "properties": properties, "messageId": f"ev-{customer}-{event}-{at}"}  # fmt: skip


STORY: list[dict[str, Any]] = [
    identify("c-1", "2026-01-05T20:00:00Z", first_name="Ana", email="ana@example.com",
             phone="+14155550101", whatsapp_opt_in=True, push_token="tok-ana",
             timezone="America/New_York"),
    identify("c-2", "2026-01-05T20:10:00Z", first_name="Bo", email="bo@example.com",
             phone="+447700900513", timezone="Europe/London"),
    identify("c-3", "2026-01-05T20:20:00Z", first_name="Cy", email="cy@example.com",
             push_token="tok-cy", timezone="UTC"),
    identify("c-4", "2026-01-05T20:30:00Z", first_name="Di", email="di@example.com",
             phone="+14155550104", timezone="America/Chicago"),
    identify("c-5", "2026-01-05T20:40:00Z", first_name="Ed", email="ed@example.com",
             timezone="UTC"),
    identify("c-6", "2026-01-05T20:50:00Z", first_name="Fay", timezone="UTC"),
    identify("c-7", "2026-01-05T20:55:00Z", first_name="Gil", email="gil@example.com",
             timezone="UTC"),
    track("c-1", "2026-01-06T03:00:00Z", "Signed Up"),
    track("c-2", "2026-01-06T09:00:00Z", "Signed Up"),
    track("c-2", "2026-01-06T10:00:00Z", "Message Opened", channel="email",
          message_id="c-2:onboarding:1:welcome", url="https://shop.example.com/start"),
    track("c-7", "2026-01-06T11:00:00Z", "Signed Up"),
    track("c-7", "2026-01-06T11:30:00Z", "Message Failed", channel="email",
          message_id="c-7:onboarding:1:welcome", error_code="550", provider_message_id="mx-7"),
    track("c-1", "2026-01-06T15:00:00Z", "Price Dropped", sku="K1"),
    track("c-1", "2026-01-06T15:05:00Z", "Price Dropped", sku="K2"),
    track("c-1", "2026-01-06T16:00:00Z", "Inbound Message", channel="sms", body="STOP"),
    track("c-5", "2026-01-07T09:00:00Z", "Product Viewed", sku="K9"),
    track("c-3", "2026-01-07T10:00:00Z", "Support Ticket Opened", subject="late parcel"),
    track("c-3", "2026-01-07T12:00:00Z", "Price Dropped", sku="K3"),
    track("c-3", "2026-01-07T11:00:00Z", "Product Viewed", sku="K3"),  # arrives late
    track("c-4", "2026-01-07T14:00:00Z", "Order Completed", order_id="O-1", total="30.00"),
    track("c-4", "2026-01-07T14:05:00Z", "Message Delivered", channel="email",
          message_id="c-4:order_confirmation:1:receipt", provider_message_id="mx-4411"),
    track("c-5", "2026-01-07T20:00:00Z", "Order Completed", order_id="O-2", total="12.50"),
    track("c-6", "2026-01-08T10:00:00Z", "Fraud Suspected", amount="900", merchant="X"),
    track("c-2", "2026-01-09T12:00:00Z", "Activated"),
]  # fmt: skip


def write_log(path: Path, events: list[dict[str, Any]]) -> Path:
    """The events as a JSON Lines log."""
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def replay_world(
    folder: Path,
    events: list[dict[str, Any]] = STORY,
    *,
    partitions: int = 1,
    until: datetime | None = UNTIL,
    config: Path | None = None,
) -> Path:
    """Replay `events` into `folder/store.db` (as `omniconsole replay` would); the store."""
    folder.mkdir(parents=True, exist_ok=True)
    log = write_log(folder / "events.jsonl", events)
    db = folder / "store.db"
    run_replay(
        ReplayOptions(
            log=log,
            db=db,
            ledger=folder / "ledger.jsonl",
            report=folder / "report.json",
            until=until,
            partitions=partitions,
            config_dir=config,
        )
    )
    return db


#: c-1 of a run with `config/examples/channels`: she turned price drops off on push,
#: opens her email in the New York evening, and two price drops are collecting a digest
#: (the second joined the first's)
CHANNELS_CONFIG = Path(__file__).resolve().parents[2] / "config" / "examples" / "channels"
CHANNELS_STORY: list[dict[str, Any]] = [
    identify("c-1", "2026-01-05T20:00:00Z", first_name="Ana", email="ana@example.com",
             push_token="tok-ana", timezone="America/New_York",
             topics={"deals": {"push": False}}),
    *(track("c-1", f"2026-01-0{d}T00:{d:02d}:00Z", "Message Opened", channel="email")
      for d in (6, 7, 8)),
    track("c-1", "2026-01-10T10:00:00Z", "Price Dropped", sku="K1"),
    track("c-1", "2026-01-10T11:00:00Z", "Price Dropped", sku="K2"),
]  # fmt: skip
