"""A live dispatcher with `[tracking]`: the message staged in the outbox carries signed
click redirects and the open pixel — unless the customer declined tracking."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pykka
from actor_support import WAIT, recorder, send_request

from omniconsole.actors.dispatcher import ChannelDispatcherActor
from omniconsole.actors.messages import Dispatch, DispatchBatch, Sync
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.governor import SEND, Decision
from omniconsole.domain.messages import Recipient
from omniconsole.domain.records import OutboxEntry, OutboxRecord
from omniconsole.domain.templates import load_templates
from omniconsole.domain.tracking import LinkTracker, read

NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
PUBLIC = "https://hooks.example.test"
SECRET = "s3cret"
TEMPLATES = load_templates(
    Path(__file__).resolve().parents[2] / "config" / "examples" / "channels" / "templates"
)
TRACKER = LinkTracker(PUBLIC, SECRET, True, True, frozenset({Channel.EMAIL}))
ITEMS = {"items": [{"sku": "SKU-1"}, {"sku": "SKU-2"}]}


def staged_html(traits: dict[str, Any]) -> str:
    writer, rows = recorder()
    dispatcher: pykka.ActorRef[Any] = ChannelDispatcherActor.start(
        Channel.EMAIL, writer, live=True, templates=TEMPLATES, tracker=TRACKER
    )
    req = send_request("c-1", now=NOW, journey="price_drop", step="alert",
                       channels=(Channel.EMAIL,), category=Category.PROMOTIONAL)  # fmt: skip
    recipient = Recipient("c-1", email="ana@example.com", first_name="Ana", traits=traits)
    req = replace(req, recipient=recipient, properties=ITEMS)
    decision = Decision(SEND, Channel.EMAIL, None, "sent on email")
    dispatcher.tell(DispatchBatch([Dispatch(req, decision, True)]))
    for ref in (dispatcher, writer):
        ref.ask(Sync(), timeout=WAIT)
    [row] = rows.records(OutboxRecord)
    html = OutboxEntry.from_json(row.payload).html
    assert html is not None
    return html


def test_a_tracked_email_links_through_signed_redirects_and_carries_the_pixel() -> None:
    html = staged_html({})
    assert "https://shop.example.com/deals" not in html
    (click,) = re.findall(rf'href="{PUBLIC}/c/([\w-]+)"', html)
    tracked = read(SECRET, click)
    assert tracked is not None
    assert (tracked.url, tracked.customer, tracked.channel) == (
        "https://shop.example.com/deals", "c-1", "email",
    )  # fmt: skip
    assert tracked.message_id == "c-1:price_drop:1:alert:1"
    (pixel,) = re.findall(rf'<img src="{PUBLIC}/o/([\w-]+)"', html)
    opened = read(SECRET, pixel)
    assert opened is not None and opened.kind == "open"


def test_a_customer_who_declined_tracking_gets_the_links_as_written() -> None:
    html = staged_html({"tracking_opt_out": True})
    assert 'href="https://shop.example.com/deals"' in html
    assert f"{PUBLIC}/" not in html
