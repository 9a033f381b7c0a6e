"""The preference centre's page: `GET /preferences` shows a customer's topics per
channel, `POST /preferences` saves them (`serve`, when the policy names `[[topic]]`s).

Links carry the customer and a token signed over it (`domain.preferences.page_token`):
only we can mint one, and it opens only that customer's page. The email
`List-Unsubscribe` page (`GET /unsubscribe`) shows the same form under its one-click
button, so an unsubscribe link leads here too; RFC 8058's `POST /unsubscribe` is
unchanged.

Saving sends, for each topic and channel whose state changed, a `Subscribed` or
`Unsubscribed` event naming the topic and channel (`source: preference-centre`) — the
same events an integration would send, applied and stored like any other. A topic of
transactional journeys is shown as always on and cannot be changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Final
from urllib.parse import urlencode

from aiohttp import web

from omniconsole.adapters.http.body import BodyError, read_form
from omniconsole.adapters.http.metrics import Metrics
from omniconsole.adapters.http.ports import IngestSink, PreferenceSource
from omniconsole.domain.channel_state import ChannelState
from omniconsole.domain.events import Event
from omniconsole.domain.preferences import TopicView, is_on, page_token, page_token_valid
from omniconsole.domain.timeutil import format_timestamp

__all__ = ["PREFERENCES_PATH", "PreferencePages", "preferences_query"]

log = logging.getLogger("omniconsole.http.preferences")

PREFERENCES_PATH: Final = "/preferences"

_NOUNS: Final = {
    "email": "Email",
    "sms": "Text message",
    "whatsapp": "WhatsApp",
    "rcs": "RCS message",
    "push": "Push notification",
    "in_app": "In the app",
}

Clock = Callable[[], datetime]


def preferences_query(secret: str, customer: str) -> str:
    """The query string of `customer`'s preference page link."""
    return urlencode({"customer": customer, "token": page_token(secret, customer)})


class PreferencePages:
    """The page's handlers. Runs on the server's event loop."""

    def __init__(
        self,
        sink: IngestSink,
        source: PreferenceSource,
        topics: Sequence[TopicView],
        secret: str,
        metrics: Metrics,
        clock: Clock,
        body_timeout: float,
    ) -> None:
        self.sink = sink
        self.source = source
        self.topics = list(topics)
        self.secret = secret
        self.metrics = metrics
        self.clock = clock
        self.body_timeout = body_timeout

    def add_routes(self, app: web.Application) -> None:
        """`GET` and `POST /preferences`."""
        app.router.add_get(PREFERENCES_PATH, self.page)
        app.router.add_post(PREFERENCES_PATH, self.save)

    def _customer(self, request: web.Request) -> str | None:
        query = request.rel_url.query
        customer, token = query.get("customer", ""), query.get("token", "")
        if not customer or not page_token_valid(self.secret, customer, token):
            return None
        return customer

    async def _state(self, customer: str) -> ChannelState | None:
        """The customer's choices; raises `_Unavailable` when they cannot be read (a page
        showing defaults instead would misstate what the customer chose)."""
        try:
            return await self.source.channel_state(customer)
        except Exception as exc:
            log.exception("could not read the preferences of a customer")
            raise _Unavailable from exc

    async def page(self, request: web.Request) -> web.Response:
        """`GET /preferences`: the form, as the customer's choices stand."""
        customer = self._customer(request)
        if customer is None:
            self.metrics.webhook_received("preferences", "forbidden")
            return web.Response(status=403, text="This preferences link is not valid.\n")
        try:
            state = await self._state(customer)
        except _Unavailable:
            return _try_again()
        return _html(_page("Your message preferences", self.form(customer, state)))

    async def save(self, request: web.Request) -> web.Response:
        """`POST /preferences`: one event per topic and channel that changed."""
        customer = self._customer(request)
        if customer is None:
            self.metrics.webhook_received("preferences", "forbidden")
            return web.Response(status=403, text="This preferences link is not valid.\n")
        try:
            form = await read_form(request, self.body_timeout)
        except BodyError as exc:
            return web.Response(status=exc.status, text=f"{exc.message}\n")
        try:
            state = await self._state(customer)
        except _Unavailable:
            return _try_again()
        at = self.clock()
        stamp = format_timestamp(at)
        events: list[Event] = []
        for view in self.topics:
            if view.transactional:
                continue
            for channel in view.channels:
                wanted = form.get(f"{view.name}:{channel}") is not None
                if wanted == is_on(state, view.topic, channel):
                    continue
                verb = "Subscribed" if wanted else "Unsubscribed"
                events.append(
                    Event(
                        kind="track",
                        customer=customer,
                        at=at,
                        name=verb,
                        properties={
                            "topic": view.name,
                            "channel": str(channel),
                            "source": "preference-centre",
                        },
                        message_id=f"preferences:{customer}:{view.name}:{channel}:{verb}:{stamp}",
                    )
                )
        if events:
            try:
                await self.sink.accept(events)
            except Exception:
                log.exception("could not record preference changes")
                return _try_again()
            try:
                state = await self._state(customer)
            except _Unavailable:
                return _try_again()
        self.metrics.webhook_received("preferences", "saved")
        note = "<p><strong>Saved.</strong></p>" if events else "<p>Nothing changed.</p>"
        return _html(_page("Your message preferences", note + self.form(customer, state)))

    async def section(self, customer: str) -> str:
        """The form under the unsubscribe page's button; empty when the customer's
        choices cannot be read (the one-click button must work regardless)."""
        try:
            state = await self._state(customer)
        except _Unavailable:
            return ""
        return "<h2>Or choose what you hear about</h2>" + self.form(customer, state)

    def form(self, customer: str, state: ChannelState | None) -> str:
        """The topics form for `customer` (also shown on the unsubscribe page)."""
        action = f"{PREFERENCES_PATH}?{preferences_query(self.secret, customer)}"
        parts = [f'<form method="post" action="{escape(action)}">']
        for view in self.topics:
            if not view.channels:
                continue
            legend = escape(view.label)
            if view.transactional:
                parts.append(f"<fieldset disabled><legend>{legend} (always on)</legend>")
            else:
                parts.append(f"<fieldset><legend>{legend}</legend>")
            for channel in view.channels:
                on = view.transactional or is_on(state, view.topic, channel)
                name = escape(f"{view.name}:{channel}")
                checked = " checked" if on else ""
                noun = _NOUNS.get(str(channel), str(channel))
                parts.append(
                    f'<label><input type="checkbox" name="{name}"{checked}> {noun}</label>'
                )
            parts.append("</fieldset>")
        parts.append("<button>Save preferences</button></form>")
        return "".join(parts)


class _Unavailable(Exception):
    """The customer's choices could not be read."""


def _try_again() -> web.Response:
    return web.Response(status=503, text="Please try again in a moment.\n")


def _page(title: str, body: str) -> str:
    return f"<!doctype html><title>{escape(title)}</title><h1>{escape(title)}</h1>{body}"


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html")
