"""The HTTP front of `omniconsole serve` (SPEC §7).

Routes:

- `POST /v1/identify`, `/v1/track`, `/v1/batch` — Segment's HTTP tracking API as
  Segment's libraries send it. The write key is the HTTP Basic user (password
  ignored); a wrong or missing key is 401. Only `identify` and `track` are accepted
  (SPEC §2): any other type (page, screen, group, alias) is 400 naming the allowed
  ones. `userId` is the customer, else `anonymousId`; `timestamp` defaults to the
  time received; `context`, `integrations` and `sentAt` are read past and not kept.
  A call over 32 KB, or a batch over 500 KB, is 413; a batch item over 32 KB is
  rejected alone. In a batch, good items are accepted and bad ones listed by index:
  `{"success": true, "accepted": n, "duplicates": d, "rejected": [{"index", "reason"}]}`.
  The 200 is sent only after `IngestSink.accept` returned, i.e. the events are
  durable; if it raises, 503 (Segment's clients retry 5xx; dedupe by `messageId`
  makes that safe). Errors are `{"success": false, "code", "message"}`, the shape
  Segment's clients read into their `APIError`. Bodies (`body.py`): gzip, deflate or
  no `Content-Encoding` (else 415; a body that does not decode is 400), received
  within `HttpSettings.body_timeout` (else 408).
- `POST /webhooks/twilio/status`, `/webhooks/twilio/inbound` — Twilio webhooks,
  form-encoded, verified with `X-Twilio-Signature` over `OMNICONSOLE_PUBLIC_URL` +
  path + query string (403 when missing or wrong). See `status_callback_url` for the
  query parameters the SMS/WhatsApp adapter puts on its status callback URL. An
  inbound message is addressed to a phone number: it becomes an `Inbound Message` for
  every profile holding that number (SPEC §7), each with the id
  `twilio:<MessageSid>:<customer>`; one without `MessageSid` is 400 (Twilio always
  sends one, and without it a retry could not be told from a new message).
- `GET /unsubscribe`, `POST /unsubscribe` — RFC 8058 one-click unsubscribe links, signed
  over customer, channel and message id (`domain.unsubscribe`): one link, one message,
  and using it again changes nothing. With topics configured, the page also shows the
  preference centre's form (`preferences.py`).
- `GET`/`POST /preferences` — the signed preference page (`preferences.py`), when the
  policy names `[[topic]]`s.
- `GET /c/<token>`, `GET /o/<token>` — click redirects and the open pixel of tracked
  live sends (`tracking_routes.py`), when the policy has `[tracking]`.
- `GET /healthz` (JSON; 503 whenever events handed in now would not be stored) and
  `GET /metrics` (Prometheus text format).
- `POST /operator/v1/consent` — agent actions (`adapters.http.operator`).

Over 400 lines: the ingest and webhook routes share the service's checks (write key,
Twilio signature, body limits); routes with state of their own live beside it
(`operator.py`, `preferences.py`, `tracking_routes.py`).
"""

from __future__ import annotations

import binascii
import hmac
import logging
from base64 import b64decode
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape as html_escape
from typing import Any, Final
from urllib.parse import urlencode

import orjson
from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from multidict import MultiDictProxy
from twilio.request_validator import RequestValidator, get_signature_algorithm

from omniconsole.adapters.http.body import BodyError, read_body, read_form
from omniconsole.adapters.http.metrics import CONTENT_TYPE, Metrics
from omniconsole.adapters.http.operator import add_operator_routes
from omniconsole.adapters.http.ports import (
    HttpSettings,
    IngestResult,
    IngestSink,
    PreferenceSource,
)
from omniconsole.adapters.http.preferences import PreferencePages
from omniconsole.adapters.http.tracking_routes import PREFETCH_WINDOW, add_tracking_routes
from omniconsole.domain.events import MAX_ID_CHARS, Event, EventError, check_text, event_from_dict
from omniconsole.domain.preferences import TopicView
from omniconsole.domain.timeutil import format_timestamp
from omniconsole.domain.unsubscribe import link_message_id

__all__ = [
    "INBOUND_PATH",
    "STATUS_PATH",
    "build_app",
    "segment_to_event",
    "status_callback_url",
]

log = logging.getLogger("omniconsole.http")

UNSUBSCRIBE_PATH: Final = "/unsubscribe"
STATUS_PATH: Final = "/webhooks/twilio/status"
INBOUND_PATH: Final = "/webhooks/twilio/inbound"

_ACCEPTED_TYPES: Final = ("identify", "track")
_KNOWN_SEGMENT_TYPES: Final = frozenset({"identify", "track", "page", "screen", "group", "alias"})
_TWILIO_CHANNELS: Final = frozenset({"sms", "whatsapp", "rcs"})
_FAILED_STATUSES: Final = frozenset({"failed", "undelivered"})
_TWIML_EMPTY: Final = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

Clock = Callable[[], datetime]
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def status_callback_url(
    public_url: str,
    *,
    message_id: str,
    customer: str,
    channel: str,
    journey: str | None = None,
    step: str | None = None,
) -> str:
    """The `StatusCallback` URL a Twilio adapter sets on a send.

    It carries our ids as query parameters, so a status callback maps back to our
    message without a lookup. Twilio signs the URL exactly as given here (query
    string included), and the service verifies it the same way.
    """
    params = {"message_id": message_id, "customer": customer, "channel": channel}
    if journey is not None:
        params["journey"] = journey
    if step is not None:
        params["step"] = step
    return f"{public_url.rstrip('/')}{STATUS_PATH}?{urlencode(params)}"


def segment_to_event(body: object, received: datetime, kind: str | None = None) -> Event:
    """Convert one Segment call to an Event, or raise EventError naming the field.

    `kind` is the type implied by the endpoint (`/v1/identify`, `/v1/track`); for a
    batch item it is None and the item's own `type` decides.
    """
    if not isinstance(body, dict):
        raise EventError("not a JSON object")
    if kind is None:
        kind = body.get("type")
        if kind is None:
            raise EventError("missing field 'type'")
        if not isinstance(kind, str) or kind not in _ACCEPTED_TYPES:
            raise EventError(
                f"field 'type' must be 'identify' or 'track' (got {kind!r}); "
                "page, screen, group and alias calls are not supported"
            )
    customer = body.get("userId")
    if customer is None or customer == "":
        customer = body.get("anonymousId")
        if customer is None or customer == "":
            raise EventError("missing field 'userId' or 'anonymousId'")
        if not isinstance(customer, str):
            raise EventError("field 'anonymousId' must be a string")
        check_text("anonymousId", customer, MAX_ID_CHARS)
    stamp = body.get("timestamp")
    obj: dict[str, Any] = {
        "type": kind,
        "userId": customer,
        "timestamp": format_timestamp(received) if stamp is None else stamp,
    }
    # `context`, `integrations`, `sentAt` etc. are deliberately not carried over.
    for key in ("event", "traits", "properties", "messageId"):
        if key in body:
            obj[key] = body[key]
    return event_from_dict(obj)


class _Reject(Exception):
    """A request answered with an error; carries the HTTP status and JSON body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _json(data: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    resp = _json({"success": False, "code": code, "message": message}, status)
    if status == 401:
        resp.headers[hdrs.WWW_AUTHENTICATE] = 'Basic realm="omniconsole"'
    return resp


def _twiml() -> web.Response:
    return web.Response(text=_TWIML_EMPTY, content_type="text/xml")


def _json_size(item: object) -> int:
    """Bytes of `item` as JSON (what Segment's 32 KB limit counts)."""
    try:
        return len(orjson.dumps(item))
    except orjson.JSONEncodeError as exc:  # deeper than the door lets through
        raise EventError(f"event cannot be stored as JSON: {exc}") from None


def _kind_label(item: object) -> str:
    """A bounded metric label for a (possibly bad) Segment item's type."""
    kind = item.get("type") if isinstance(item, dict) else None
    return kind if isinstance(kind, str) and kind in _KNOWN_SEGMENT_TYPES else "unknown"


def _basic_auth_login(header: str) -> bytes | None:
    """The raw user name of an HTTP Basic `Authorization` header, None if not Basic.

    (aiohttp's `BasicAuth.decode` is deprecated; the password is ignored, as Segment's
    API does.)
    """
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    login, sep, _ = decoded.partition(b":")
    return login if sep else None


def _form_field(form: MultiDictProxy[Any], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value else None


def _address_channel(address: str | None) -> str | None:
    """`whatsapp` / `rcs` from a Twilio address prefix, None for a bare number."""
    if address is None:
        return None
    prefix, sep, _ = address.partition(":")
    if sep and prefix.lower() in ("whatsapp", "rcs"):
        return prefix.lower()
    return None


def _bare_number(address: str) -> str:
    """`whatsapp:+1415…` → `+1415…`; a bare number is returned as is."""
    prefix, sep, rest = address.partition(":")
    return rest if sep and prefix.isalpha() else address


class _Service:
    """The request handlers; one per application. Runs on the server's event loop."""

    def __init__(
        self, sink: IngestSink, settings: HttpSettings, metrics: Metrics, clock: Clock
    ) -> None:
        self.sink = sink
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.validator = (
            RequestValidator(settings.twilio_auth_token)
            if settings.twilio_auth_token is not None
            else None
        )
        #: the preference centre, shown under the unsubscribe button too; None: no topics
        self.preferences: PreferencePages | None = None

    # ---- shared helpers ------------------------------------------------------

    def _check_write_key(self, request: web.Request) -> None:
        header = request.headers.get(hdrs.AUTHORIZATION)
        if not header:
            raise _Reject(401, "unauthorized", "missing write key (HTTP Basic username)")
        login = _basic_auth_login(header)
        if login is None:
            raise _Reject(401, "unauthorized", "Authorization must be HTTP Basic")
        if not hmac.compare_digest(login, self.settings.write_key.encode()):
            raise _Reject(401, "unauthorized", "invalid write key")

    async def _read_json(self, request: web.Request, limit: int) -> object:
        try:
            raw = await read_body(request, limit, self.settings.body_timeout)
        except BodyError as exc:
            raise _Reject(exc.status, exc.code, exc.message) from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _Reject(400, "invalid_json", f"malformed JSON: {exc}") from None

    async def _accept(self, events: list[Event]) -> IngestResult:
        try:
            return await self.sink.accept(events)
        except Exception:
            log.exception("ingest sink failed; %d event(s) not accepted", len(events))
            raise _Reject(503, "unavailable", "events could not be stored; retry") from None

    def _count_accepted(self, events: list[Event], result: IngestResult) -> None:
        """Split the sink's counts per event kind for the ingest metric."""
        duplicate = [False] * len(events)
        remaining = result.duplicates
        # Later occurrences of a repeated id are the duplicates, so walk backwards.
        for i in range(len(events) - 1, -1, -1):
            if remaining <= 0:
                break
            if events[i].message_id in result.duplicate_ids:
                duplicate[i] = True
                remaining -= 1
        # A sink that gives counts without ids: only events with an id can repeat.
        for i in range(len(events) - 1, -1, -1):
            if remaining <= 0:
                break
            if not duplicate[i] and events[i].message_id is not None:
                duplicate[i] = True
                remaining -= 1
        for event, dup in zip(events, duplicate, strict=True):
            self.metrics.event_ingested(event.kind, "duplicate" if dup else "accepted")

    # ---- Segment ingest --------------------------------------------------------

    async def single(self, request: web.Request, kind: str) -> web.Response:
        try:
            self._check_write_key(request)
            body = await self._read_json(request, self.settings.max_event_bytes)
            try:
                event = segment_to_event(body, self.clock(), kind)
            except EventError as exc:
                self.metrics.event_ingested(kind, "rejected")
                raise _Reject(400, "invalid_event", str(exc)) from None
            result = await self._accept([event])
            if result.rejected:
                self.metrics.event_ingested(kind, "rejected")
                raise _Reject(400, "invalid_event", result.rejected[0][1])
        except _Reject as rej:
            return _error(rej.status, rej.code, rej.message)
        self._count_accepted([event], result)
        return _json(
            {"success": True, "accepted": result.accepted, "duplicates": result.duplicates}
        )

    async def identify(self, request: web.Request) -> web.Response:
        """`POST /v1/identify`."""
        return await self.single(request, "identify")

    async def track(self, request: web.Request) -> web.Response:
        """`POST /v1/track`."""
        return await self.single(request, "track")

    async def batch(self, request: web.Request) -> web.Response:
        """`POST /v1/batch`: accept the good items, report the bad ones by index."""
        received = self.clock()
        try:
            self._check_write_key(request)
            body = await self._read_json(request, self.settings.max_batch_bytes)
            if not isinstance(body, dict):
                raise _Reject(400, "invalid_request", "body must be a JSON object")
            items = body.get("batch")
            if items is None:
                raise _Reject(400, "invalid_request", "missing field 'batch'")
            if not isinstance(items, list):
                raise _Reject(400, "invalid_request", "field 'batch' must be a list")
            events: list[Event] = []
            positions: list[int] = []  # each event's index in the batch
            rejected: list[dict[str, Any]] = []
            for index, item in enumerate(items):
                try:
                    event = segment_to_event(item, received)  # checks depth before sizing
                    size = _json_size(item)
                    if size > self.settings.max_event_bytes:
                        raise EventError(
                            f"event is {size} bytes, over the "
                            f"{self.settings.max_event_bytes // 1024} KB limit"
                        )
                    events.append(event)
                    positions.append(index)
                except EventError as exc:
                    self.metrics.event_ingested(_kind_label(item), "rejected")
                    rejected.append({"index": index, "reason": str(exc)})
            result = await self._accept(events) if events else IngestResult(0)
            if result.rejected:
                for at, reason in result.rejected:
                    self.metrics.event_ingested(events[at].kind, "rejected")
                    rejected.append({"index": positions[at], "reason": reason})
                rejected.sort(key=lambda r: int(r["index"]))
                refused = {at for at, _ in result.rejected}
                events = [e for i, e in enumerate(events) if i not in refused]
        except _Reject as rej:
            return _error(rej.status, rej.code, rej.message)
        if rejected:
            log.warning("batch: %d item(s) rejected: %s", len(rejected), rejected[:5])
        self._count_accepted(events, result)
        return _json(
            {
                "success": True,
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": rejected,
            }
        )

    # ---- Twilio webhooks -------------------------------------------------------

    async def _verified_form(self, request: web.Request, hook: str) -> MultiDictProxy[Any]:
        try:
            form = await read_form(request, self.settings.body_timeout)
        except BodyError as exc:
            raise _Reject(exc.status, exc.code, exc.message) from None
        if self.validator is None:
            self.metrics.webhook_received(hook, "forbidden")
            log.warning("Twilio webhook refused: TWILIO_AUTH_TOKEN is not set")
            raise _Reject(403, "forbidden", "webhook signatures cannot be verified")
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            self.metrics.webhook_received(hook, "forbidden")
            raise _Reject(403, "forbidden", "missing X-Twilio-Signature")
        base = self.settings.public_url or f"{request.scheme}://{request.host}"
        url = base + request.raw_path  # raw_path keeps the query string as sent
        algorithm = get_signature_algorithm(
            request.headers.get("X-Twilio-Webhooks-Signature-Settings")
        )
        if not self.validator.validate(url, form, signature, algorithm):
            self.metrics.webhook_received(hook, "forbidden")
            log.warning("Twilio webhook with an invalid signature for %s", request.path)
            raise _Reject(403, "forbidden", "invalid X-Twilio-Signature")
        return form

    async def twilio_status(self, request: web.Request) -> web.Response:
        """`POST /webhooks/twilio/status`: delivered / failed → an event; others 204."""
        try:
            form = await self._verified_form(request, "status")
            status = _form_field(form, "MessageStatus") or _form_field(form, "SmsStatus")
            if status not in ("delivered", *_FAILED_STATUSES):
                self.metrics.webhook_received("status", "ignored")
                return web.Response(status=204)
            sid = _form_field(form, "MessageSid") or _form_field(form, "SmsSid")
            if sid is None:
                raise _Reject(400, "invalid_request", "missing field 'MessageSid'")
            query = request.query
            channel = query.get("channel") or _address_channel(_form_field(form, "To"))
            channel = channel or _address_channel(_form_field(form, "From")) or "sms"
            if channel not in _TWILIO_CHANNELS:
                raise _Reject(
                    400, "invalid_request", "query 'channel' must be one of rcs, sms, whatsapp"
                )
            customer = query.get("customer")
            to = _form_field(form, "To")
            if not customer and to is not None:
                # Without our ids a status names only a number; when several profiles
                # hold it, which one's message this was is unknowable: ignored.
                holders = await self.sink.customers_for_phone(_bare_number(to))
                customer = holders[0] if len(holders) == 1 else None
            if not customer:
                self.metrics.webhook_received("status", "unknown_customer")
                log.info("status callback for %s maps to no customer; ignored", sid)
                return web.Response(status=204)
            properties: dict[str, Any] = {
                "channel": channel,
                "message_id": query.get("message_id") or None,
                "provider_message_id": sid,
            }
            for key in ("journey", "step"):
                if query.get(key):
                    properties[key] = query[key]
            failed = status in _FAILED_STATUSES
            if failed:
                properties["error_code"] = _form_field(form, "ErrorCode")
                properties["provider_status"] = status
            event = Event(
                kind="track",
                customer=customer,
                at=self.clock(),
                name="Message Failed" if failed else "Message Delivered",
                properties=properties,
                # Twilio may call back more than once for one status: apply it once.
                message_id=f"twilio:{sid}:{status}",
            )
            result = await self._accept([event])
            if result.rejected:
                raise _Reject(400, "invalid_request", result.rejected[0][1])
        except _Reject as rej:
            return _error(rej.status, rej.code, rej.message)
        self._count_accepted([event], result)
        self.metrics.webhook_received("status", status)
        return _json(
            {"success": True, "accepted": result.accepted, "duplicates": result.duplicates}
        )

    async def twilio_inbound(self, request: web.Request) -> web.Response:
        """`POST /webhooks/twilio/inbound`: an `Inbound Message` event for every profile
        holding the sender's number; empty TwiML."""
        try:
            form = await self._verified_form(request, "inbound")
            sender = _form_field(form, "From")
            if sender is None:
                raise _Reject(400, "invalid_request", "missing field 'From'")
            sid = _form_field(form, "MessageSid") or _form_field(form, "SmsSid")
            if sid is None:
                raise _Reject(400, "invalid_request", "missing field 'MessageSid'")
            channel = _address_channel(sender) or "sms"
            customers = await self.sink.customers_for_phone(_bare_number(sender))
            if not customers:
                self.metrics.webhook_received("inbound", "unknown_number")
                log.info("inbound %s message from an unknown number; ignored", channel)
                return _twiml()
            at = self.clock()
            body = _form_field(form, "Body") or ""
            events = [
                Event(
                    kind="track",
                    customer=customer,
                    at=at,
                    name="Inbound Message",
                    properties={"channel": channel, "body": body, "provider_message_id": sid},
                    # one message, one event per profile holding the number; a retry of
                    # the webhook (same MessageSid) is a duplicate of each
                    message_id=f"twilio:{sid}:{customer}",
                )
                for customer in customers
            ]
            result = await self._accept(events)
            if result.rejected:
                raise _Reject(400, "invalid_request", result.rejected[0][1])
        except _Reject as rej:
            return _error(rej.status, rej.code, rej.message)
        self._count_accepted(events, result)
        self.metrics.webhook_received("inbound", "accepted")
        return _twiml()

    # ---- one-click unsubscribe (RFC 8058) -------------------------------------

    def _unsubscribe_target(self, request: web.Request) -> tuple[str, str, str] | None:
        query = request.rel_url.query
        customer, channel = query.get("customer", ""), query.get("channel", "")
        token, message_id = query.get("token", ""), query.get("message_id", "")
        secret = self.settings.link_secret or self.settings.write_key
        if not customer or not channel:
            return None
        # The token signs the message id too: one link is one message's unsubscribe,
        # and using it again is the same event (a duplicate), not another one.
        signed = link_message_id(secret, customer, channel, message_id, token)
        if signed is None:
            return None
        return customer, channel, signed

    async def unsubscribe_page(self, request: web.Request) -> web.Response:
        """`GET /unsubscribe`: a page with one button (a link preview must not unsubscribe)."""
        target = self._unsubscribe_target(request)
        if target is None:
            return web.Response(status=403, text="This unsubscribe link is not valid.\n")
        customer, channel, _ = target
        page = (
            "<!doctype html><title>Unsubscribe</title>"
            f"<p>Stop receiving {html_escape(channel)} messages from us?</p>"
            f'<form method="post" action="{html_escape(str(request.rel_url))}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            "<button>Unsubscribe</button></form>"
        )
        if self.preferences is not None:
            # the unsubscribe page grows into the preference centre
            page += await self.preferences.section(customer)
        return web.Response(text=page, content_type="text/html")

    async def unsubscribe(self, request: web.Request) -> web.Response:
        """`POST /unsubscribe`: the one-click unsubscribe; an `Unsubscribed` event."""
        target = self._unsubscribe_target(request)
        if target is None:
            self.metrics.webhook_received("unsubscribe", "forbidden")
            return web.Response(status=403, text="This unsubscribe link is not valid.\n")
        customer, channel, message_id = target
        event = Event(
            kind="track",
            customer=customer,
            at=self.clock(),
            name="Unsubscribed",
            properties={"channel": channel, "source": "list-unsubscribe",
                        "message_id": message_id},
            message_id=f"unsubscribe:{customer}:{channel}:{message_id}",
        )  # fmt: skip
        try:
            await self.sink.accept([event])
        except Exception:
            log.exception("could not record an unsubscribe")
            return web.Response(status=503, text="Please try again in a moment.\n")
        self.metrics.webhook_received("unsubscribe", "ok")
        return web.Response(text=f"You will no longer receive {channel} messages from us.\n")

    # ---- operations ------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        """`GET /healthz`: `{"status": "ok", ...sink.health()}`; 503 "unavailable" when
        the sink does not accept events."""
        try:
            details = self.sink.health()
        except Exception:
            log.exception("sink health check failed")
            return _json({"status": "error"}, 503)
        # A load balancer must stop routing here whenever ingest would fail.
        accepting = details.get("accepting", True) is not False
        return _json(
            {
                "status": "ok" if accepting else "unavailable",
                "webhooks_verifiable": self.settings.webhooks_verifiable,
                **details,
            },
            200 if accepting else 503,
        )

    async def metrics_page(self, request: web.Request) -> web.Response:
        """`GET /metrics`: Prometheus text exposition format."""
        resp = web.Response(body=self.metrics.render())
        resp.headers[hdrs.CONTENT_TYPE] = CONTENT_TYPE
        return resp


def _request_counter(metrics: Metrics) -> Middleware:
    @web.middleware
    async def count_requests(request: web.Request, handler: _Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            metrics.request_served(route, exc.status)
            raise
        except Exception:
            metrics.request_served(route, 500)
            raise
        metrics.request_served(route, resp.status)
        return resp

    return count_requests


def build_app(
    sink: IngestSink,
    settings: HttpSettings,
    metrics: Metrics,
    *,
    clock: Clock = _utc_now,
    topics: Sequence[TopicView] = (),
    preference_source: PreferenceSource | None = None,
    tracking: bool = False,
    click_window: float = PREFETCH_WINDOW,
) -> web.Application:
    """The aiohttp application of `omniconsole serve` (routes in the module docstring).

    `clock` gives the receive time used for a missing `timestamp` and for webhook
    events; it must return an aware datetime. `topics` with a `preference_source` adds
    the preference page; `tracking` the click and open routes (`click_window`: seconds
    within which fetching every link of a message is a scanner).
    """
    if settings.twilio_auth_token is None:
        log.warning("TWILIO_AUTH_TOKEN is not set: Twilio webhooks will be refused (403)")
    elif settings.public_url is None:
        log.warning(
            "OMNICONSOLE_PUBLIC_URL is not set: Twilio signatures are checked against the "
            "Host header, which fails behind a proxy that rewrites it"
        )
    service = _Service(sink, settings, metrics, clock)
    app = web.Application(middlewares=[_request_counter(metrics)])
    app.router.add_post("/v1/identify", service.identify)
    app.router.add_post("/v1/track", service.track)
    app.router.add_post("/v1/batch", service.batch)
    app.router.add_post(STATUS_PATH, service.twilio_status)
    app.router.add_post(INBOUND_PATH, service.twilio_inbound)
    app.router.add_get(UNSUBSCRIBE_PATH, service.unsubscribe_page)
    app.router.add_post(UNSUBSCRIBE_PATH, service.unsubscribe)
    secret = settings.link_secret or settings.write_key
    if topics and preference_source is not None:
        service.preferences = PreferencePages(
            sink, preference_source, topics, secret, metrics, clock, settings.body_timeout
        )
        service.preferences.add_routes(app)
    if tracking:
        add_tracking_routes(app, sink, secret, metrics, clock, window=click_window)
    app.router.add_get("/healthz", service.healthz)
    app.router.add_get("/metrics", service.metrics_page)
    add_operator_routes(app, sink, settings.operator_key, clock)
    return app
