"""Seeded synthetic event logs in the Segment shape of SPEC §2.

`generate_events` yields a believable stream for a population of customers over a
window of days: identifies with partial reachability, sign-ups, sessions at human
hours in each customer's own time zone, product views and orders, price drops,
opt-outs and replies, engagement and delivery failures. The stream comes out in
nondecreasing timestamp order without ever holding it in memory: each customer is
created when the stream reaches their first event, keeps a short agenda of their
own upcoming events, and the agendas are merged with a heap.

`MIXES` names other mixes of what customers do (`decision-heavy`: mostly price drops
and product views, for the per-core benchmark); the default is the realistic one.

A *planted lift* (`PlantedLift`) adds goal events for the treated customers of a
journey, chosen with the engine's own assignment, so the journey's true lift is known
and a replay's measured lift can be checked against it. The planted events draw from
a random stream of their own, so every other event stays the same.

Same arguments, same seed: the same events, and `write_log` the same bytes.

(Over 400 lines: `_Stream`, one class whose methods are the kinds of event a customer
produces, sharing its agenda and random stream; the world's tables are in
`generator_world`, the mixes and the planted lift in `generator_mix`.)
"""

from __future__ import annotations

import contextlib
import heapq
import random
from bisect import bisect
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import orjson

from omniconsole.domain.generator_mix import (
    ACTIVATION,
    MIXES,
    NEW_SHARE,
    SESSION_OVERSHOOT,
    EventMix,
    PlantedLift,
    default_events_per_customer,
    parse_plant_lift,
)
from omniconsole.domain.generator_world import (
    CATALOG_SIZE,
    CATEGORIES,
    FAIL_CODES,
    FRAUD_REASONS,
    HOUR_CUM,
    HOUR_TOTAL,
    PLANS,
    PRICE_CENTS,
    REGION_CUM,
    REGION_TOTAL,
    REGIONS,
    REPLIES,
    SKUS,
    SOURCES,
    START_WORDS,
    STOP_WORDS,
    TICKET_SUBJECTS,
    Region,
)

__all__ = [
    "DEFAULT_DUPLICATE_RATE",
    "MIXES",
    "EventMix",
    "PlantedLift",
    "default_events_per_customer",
    "generate_events",
    "parse_plant_lift",
    "write_log",
]

DEFAULT_DUPLICATE_RATE = 0.002
"""Share of lines `write_log` sends twice (an exact re-send, same `messageId`)."""

_DAY = 86_400
_EPOCH = date(1970, 1, 1)

# Agenda items are ints: (unix seconds << _SHIFT) | code. Sorting them sorts by time,
# then by code, which keeps one customer's same-second events in a stable order.
_SHIFT = 6
_MASK = (1 << _SHIFT) - 1

(
    _SIGNED_UP,
    _LOGGED_IN,
    _PRODUCT_VIEWED,
    _ADDED_TO_CART,
    _ORDER_COMPLETED,
    _ACTIVATED,
    _PRICE_DROPPED,
    _FRAUD_SUSPECTED,
    _SUPPORT_TICKET,
    _UNSUBSCRIBED,
    _SUBSCRIBED,
    _INBOUND_REPLY,
    _INBOUND_STOP,
    _INBOUND_START,
    _OPENED_EMAIL,
    _CLICKED_EMAIL,
    _OPENED_PUSH,
    _OPENED_ANY,
    _CLICKED_ANY,
    _FAILED_WELCOME,
    _FAILED_ANY,
    _IDENTIFY_UPDATE,
    _PLANTED_ACTIVATION,
) = range(23)


class _Customer:
    """A customer's state while the stream still holds events for them."""

    __slots__ = (
        "agenda",
        "email",
        "last_order",
        "phone",
        "push",
        "rcs",
        "region",
        "sku",
        "stopped",
        "tz",
        "uid",
        "unsub",
        "whatsapp",
    )

    def __init__(self, uid: str, tz: int, region: Region) -> None:
        self.uid = uid
        self.tz = tz
        self.region = region
        self.email = False
        self.phone = False
        self.whatsapp = False
        self.rcs = False
        self.push = False
        self.sku = -1  # last product viewed, so orders and price drops match it
        self.last_order: str | None = None
        self.unsub: str | None = None
        self.stopped: str | None = None
        self.agenda: list[int] = []  # descending, so pop() yields the next event

    def channels(self) -> list[str]:
        """Channels this customer can be reached on (besides in_app), best known first."""
        out = []
        if self.email:
            out.append("email")
        if self.push:
            out.append("push")
        if self.whatsapp:
            out.append("whatsapp")
        if self.phone:
            out.append("sms")
        return out


class _Stream:
    """One generation run: the random source, the clock window and the caches."""

    def __init__(
        self,
        customers: int,
        days: int,
        seed: int,
        start: datetime,
        target: float,
        mix: EventMix,
        plant: PlantedLift | None = None,
    ) -> None:
        self.customers = customers
        self.mix = mix
        self.seed = seed
        self.rng = random.Random(seed)
        self.plant = plant
        # its own stream: planting draws nothing from `rng`, so the rest stays the same
        self.plant_rng = random.Random(seed * 1_000_003 + 29)
        self.t0 = _to_unix(start)
        self.end = self.t0 + days * _DAY
        self.target = target
        self.zones = [ZoneInfo(r.timezone) for r in REGIONS]
        self._offsets: dict[int, int] = {}
        self._minute = -1
        self._minute_prefix = ""
        self._day_prefix: dict[int, str] = {}
        self._seconds = tuple(f"{s:02d}Z" for s in range(60))
        self._msg_prefix = f"evt-{seed}-"
        self._count = 0
        self._orders = 0
        self._tickets = 0

    # -- time ------------------------------------------------------------------

    def offset(self, tz: int, day: int) -> int:
        """UTC offset in seconds of zone `tz` at local noon on epoch day `day`."""
        key = tz * 1_000_000 + day
        off = self._offsets.get(key)
        if off is None:
            d = _EPOCH + timedelta(days=day)
            noon = datetime(d.year, d.month, d.day, 12, tzinfo=self.zones[tz])
            delta = noon.utcoffset()
            off = int(delta.total_seconds()) if delta is not None else 0
            self._offsets[key] = off
        return off

    def human_time(self, tz: int, lo: int, hi: int) -> int | None:
        """A time strictly between `lo` and `hi` at a plausible local hour in zone `tz`."""
        if hi - lo < 2:
            return None
        rnd = self.rng.random
        first = (lo + self.offset(tz, lo // _DAY)) // _DAY
        last = (hi + self.offset(tz, hi // _DAY)) // _DAY
        span = last - first + 1
        for _ in range(4):
            day = first + int(rnd() * span)
            hour = bisect(HOUR_CUM, rnd() * HOUR_TOTAL)
            ts = day * _DAY + hour * 3600 + int(rnd() * 3600) - self.offset(tz, day)
            if lo < ts < hi:
                return ts
        # A narrow window at night: any time inside it will do.
        return lo + 1 + int(rnd() * (hi - lo - 1))

    def stamp(self, ts: int) -> str:
        """`ts` (unix seconds) as `YYYY-MM-DDTHH:MM:SSZ`, cheaply for an ordered stream."""
        minute = ts // 60
        if minute != self._minute:
            day, rest = divmod(minute, 1440)
            prefix = self._day_prefix.get(day)
            if prefix is None:
                prefix = (_EPOCH + timedelta(days=day)).isoformat() + "T"
                self._day_prefix[day] = prefix
            hour, mins = divmod(rest, 60)
            self._minute = minute
            self._minute_prefix = f"{prefix}{hour:02d}:{mins:02d}:"
        return self._minute_prefix + self._seconds[ts % 60]

    def message_id(self) -> str:
        """The next unique `messageId`."""
        self._count += 1
        return f"{self._msg_prefix}{self._count:07d}"

    # -- the stream ------------------------------------------------------------

    def arrivals(self) -> list[int]:
        """Every customer's first moment, sorted: (ts << 7) | (region << 1) | is_new."""
        rnd = self.rng.random
        out = []
        for _ in range(self.customers):
            region = bisect(REGION_CUM, rnd() * REGION_TOTAL)
            is_new = 1 if rnd() < NEW_SHARE else 0
            ts = self.human_time(region, self.t0 - 1, self.end - 60)
            if ts is None:
                ts = self.t0
            out.append(ts << 7 | region << 1 | is_new)
        out.sort()
        return out

    def run(self) -> Iterator[dict[str, Any]]:
        """Yield the whole log in nondecreasing timestamp order."""
        arrivals = self.arrivals()
        heap: list[tuple[int, int, _Customer]] = []
        n_arrivals = len(arrivals)
        i = 0
        seq = 0
        emit = self.emit
        while True:
            if i < n_arrivals and (not heap or arrivals[i] >> 7 <= heap[0][0]):
                code = arrivals[i]
                i += 1
                ts = code >> 7
                customer, event = self.arrive(i, ts, code >> 1 & 63, code & 1 == 1)
                yield event
                agenda = customer.agenda
                if agenda:
                    seq += 1
                    heapq.heappush(heap, (agenda[-1] >> _SHIFT, seq, customer))
                continue
            if not heap:
                return
            customer = heap[0][2]
            agenda = customer.agenda
            item = agenda.pop()
            yield emit(customer, item >> _SHIFT, item & _MASK)
            if agenda:
                seq += 1
                heapq.heapreplace(heap, (agenda[-1] >> _SHIFT, seq, customer))
            else:
                heapq.heappop(heap)

    def arrive(self, n: int, ts: int, tz: int, is_new: bool) -> tuple[_Customer, dict[str, Any]]:
        """Create customer number `n`, plan their events, and return their identify."""
        rng = self.rng
        rnd = rng.random
        region = REGIONS[tz]
        c = _Customer(f"c-{n:06d}", tz, region)
        reach = rnd()
        c.email = reach < 0.83
        c.phone = reach < 0.55 or 0.83 <= reach < 0.95
        c.push = rnd() < (0.85 if not (c.email or c.phone) else 0.45)
        if c.phone:
            c.whatsapp = rnd() < region.whatsapp
            c.rcs = rnd() < region.rcs
        first = region.names[int(rnd() * len(region.names))]
        traits: dict[str, Any] = {"first_name": first}
        if c.email:
            domain = ("example.com", "example.org", "example.net")[int(rnd() * 3)]
            traits["email"] = f"{first.lower()}.{n}@{domain}"
        if c.phone:
            traits["phone"] = region.phone(rng)
            traits["whatsapp_opt_in"] = c.whatsapp
            traits["rcs_capable"] = c.rcs
        if c.push:
            traits["push_token"] = f"tok-{rng.getrandbits(64):016x}"
        traits["timezone"] = region.timezone
        traits["locale"] = region.locales[int(rnd() * len(region.locales))]
        if rnd() < 0.08:
            options = [*c.channels(), "in_app"]
            traits["preferred_channel"] = options[int(rnd() * len(options))]
        if rnd() < 0.3:
            traits["plan"] = PLANS[int(rnd() * len(PLANS))]
        self.plan(c, ts, is_new)
        event = {
            "type": "identify",
            "userId": c.uid,
            "timestamp": self.stamp(ts),
            "traits": traits,
            "messageId": self.message_id(),
        }
        return c, event

    def plan(self, c: _Customer, a: int, is_new: bool) -> None:
        """Fill `c.agenda` with everything the customer will do after arriving at `a`."""
        rng = self.rng
        rnd = rng.random
        end = self.end
        tz = c.tz
        items: list[int] = []

        def add(ts: int, code: int) -> None:
            if a < ts < end:
                items.append(ts << _SHIFT | code)

        def session(t: int) -> None:
            if c.push and rnd() < 0.2:
                add(t - 5 - int(rnd() * 120), _OPENED_PUSH)  # tapped a notification
            add(t, _LOGGED_IN)
            u = t
            views = 0
            while views < 8 and rnd() < 0.55:
                u += 15 + int(rnd() * 300)
                add(u, _PRODUCT_VIEWED)
                views += 1
            ordered = False
            if views and rnd() < 0.3:
                u += 30 + int(rnd() * 600)
                add(u, _ADDED_TO_CART)
                if rnd() < 0.55:
                    u += 60 + int(rnd() * 900)
                    add(u, _ORDER_COMPLETED)
                    ordered = True
            elif rnd() < 0.04:
                u += 60 + int(rnd() * 600)
                add(u, _ORDER_COMPLETED)  # a repeat purchase, straight from history
                ordered = True
            if ordered and rnd() < 0.02:
                add(u + 30 + int(rnd() * 600), _FRAUD_SUSPECTED)

        if is_new:
            signed_up = a + 2 + int(rnd() * 40)
            add(signed_up, _SIGNED_UP)
            if c.email:
                if rnd() < 0.02:
                    add(signed_up + 3 + int(rnd() * 300), _FAILED_WELCOME)
                elif rnd() < 0.4:
                    opened = signed_up + 60 + int(rng.expovariate(1 / 1800))
                    add(opened, _OPENED_EMAIL)
                    if rnd() < 0.35:
                        add(opened + 20 + int(rnd() * 600), _CLICKED_EMAIL)
            draw = rnd()
            if draw < ACTIVATION:
                hi = signed_up + int(_DAY * (0.3 + rng.expovariate(1 / 3)))
                t = self.human_time(tz, signed_up + 1800, min(hi, end))
                if t is not None:
                    login = t - 60 - int(rnd() * 900)
                    add(login, _LOGGED_IN)
                    add(t, _ACTIVATED)
            elif self.plant is not None:
                lifetime = self.plant.planted(c.uid, draw)
                if lifetime is not None:
                    # a minute after signing up at the earliest, within lifetime and log
                    span = min(signed_up + lifetime, end) - 1 - (signed_up + 60)
                    if span > 0:
                        at = signed_up + 60 + int(self.plant_rng.random() * span)
                        add(at, _PLANTED_ACTIVATION)
        else:
            session(a + 1 + int(rnd() * 5))

        # Rarer things, each at most once or twice per customer.
        if rnd() < 0.02 and (t := self.human_time(tz, a, end)) is not None:
            add(t, _SUPPORT_TICKET)
        if rnd() < 0.03 and (t := self.human_time(tz, a, end)) is not None:
            add(t, _UNSUBSCRIBED)
            if rnd() < 0.25 and (t2 := self.human_time(tz, t, end)) is not None:
                add(t2, _SUBSCRIBED)
        if c.phone:
            if rnd() < 0.06 and (t := self.human_time(tz, a, end)) is not None:
                add(t, _INBOUND_REPLY)
            if rnd() < 0.015 and (t := self.human_time(tz, a, end)) is not None:
                add(t, _INBOUND_STOP)
                if rnd() < 0.3 and (t2 := self.human_time(tz, t, end)) is not None:
                    add(t2, _INBOUND_START)
        if rnd() < 0.012:
            add(a + 60 + int(rnd() * (end - a)), _FAILED_ANY)
        if rnd() < 0.06 and (t := self.human_time(tz, a, end)) is not None:
            add(t, _IDENTIFY_UPDATE)
        mix = self.mix
        while rnd() < mix.price_drop_repeat:  # price drops come from the catalogue, at any hour
            add(a + 60 + int(rnd() * (end - a)), _PRICE_DROPPED)
        if mix.view_repeat:  # only some mixes: the default draws nothing here
            while rnd() < mix.view_repeat and (t := self.human_time(tz, a, end)) is not None:
                add(t, _PRODUCT_VIEWED)
        while rnd() < 0.2 and (t := self.human_time(tz, a, end)) is not None:
            add(t, _OPENED_ANY)  # a newsletter or a past campaign
            if rnd() < 0.3:
                add(t + 20 + int(rnd() * 900), _CLICKED_ANY)

        # Sessions fill the rest: a heavy-tailed share of the target per customer.
        budget = (self.target - mix.fixed_events) * min(rng.expovariate(1.0), 12.0)
        budget -= SESSION_OVERSHOOT
        planned = len(items)
        while len(items) - planned < budget:
            t = self.human_time(tz, a, end)
            if t is None:
                break
            before = len(items)
            session(t)
            if len(items) == before:
                break
        items.sort(reverse=True)
        c.agenda = items

    def emit(self, c: _Customer, ts: int, code: int) -> dict[str, Any]:
        """The event dict for one agenda item of customer `c`."""
        rnd = self.rng.random
        props: dict[str, Any]
        if code == _LOGGED_IN:
            name = "Logged In"
            platform = ("ios", "android")[int(rnd() * 2)] if c.push else "web"
            props = {"platform": platform}
        elif code == _PRODUCT_VIEWED:
            name = "Product Viewed"
            n = int(rnd() * CATALOG_SIZE)
            c.sku = n
            props = {
                "sku": SKUS[n],
                "category": CATEGORIES[n % len(CATEGORIES)],
                "price": PRICE_CENTS[n] / 100,
            }
        elif code == _ADDED_TO_CART:
            name = "Added to Cart"
            n = self.sku_of(c)
            props = {"sku": SKUS[n], "quantity": 1 + int(rnd() * 1.3)}
        elif code == _ORDER_COMPLETED:
            name = "Order Completed"
            n = self.sku_of(c)
            self._orders += 1
            c.last_order = f"o-{self.seed}-{self._orders:06d}"
            props = {
                "order_id": c.last_order,
                "sku": SKUS[n],
                "total": PRICE_CENTS[n] / 100,
                "currency": c.region.currency,
            }
        elif code == _SIGNED_UP:
            name = "Signed Up"
            props = {"source": SOURCES[int(rnd() * len(SOURCES))]}
        elif code == _ACTIVATED:
            name = "Activated"
            props = {}
        elif code == _PLANTED_ACTIVATION:
            # its own id: the planted line does not shift the numbering of the others
            return {
                "type": "track",
                "userId": c.uid,
                "event": "Activated",
                "timestamp": self.stamp(ts),
                "properties": {"planted": True},
                "messageId": f"{self._msg_prefix}planted-{c.uid}",
            }
        elif code == _PRICE_DROPPED:
            name = "Price Dropped"
            n = self.sku_of(c)
            old = PRICE_CENTS[n]
            new = old - old * (10 + int(rnd() * 30)) // 100
            props = {"sku": SKUS[n], "old_price": old / 100, "new_price": new / 100}
        elif code in (_OPENED_EMAIL, _CLICKED_EMAIL, _OPENED_PUSH, _OPENED_ANY, _CLICKED_ANY):
            if code in (_OPENED_EMAIL, _CLICKED_EMAIL):
                channel = "email"
            elif code == _OPENED_PUSH:
                channel = "push"
            else:
                options = [ch for ch in c.channels() if ch != "sms"] or ["in_app"]
                channel = options[int(rnd() * len(options))]
            opened = code in (_OPENED_EMAIL, _OPENED_PUSH, _OPENED_ANY)
            name = "Message Opened" if opened else "Message Clicked"
            props = {"channel": channel}
        elif code == _FAILED_WELCOME:
            name = "Message Failed"
            props = {"channel": "email", "journey": "onboarding", "step": "welcome"}
            props["code"] = FAIL_CODES["email"]
        elif code == _FAILED_ANY:
            name = "Message Failed"
            options = c.channels() or ["email"]
            channel = options[int(rnd() * len(options))]
            props = {"channel": channel, "code": FAIL_CODES[channel]}
        elif code == _INBOUND_REPLY:
            name = "Inbound Message"
            channel = "whatsapp" if c.whatsapp and rnd() < 0.6 else "sms"
            props = {"channel": channel, "body": REPLIES[int(rnd() * len(REPLIES))]}
        elif code == _INBOUND_STOP:
            name = "Inbound Message"
            channel = "whatsapp" if c.whatsapp and rnd() < 0.5 else "sms"
            c.stopped = channel
            props = {"channel": channel, "body": STOP_WORDS[int(rnd() * len(STOP_WORDS))]}
        elif code == _INBOUND_START:
            name = "Inbound Message"
            channel = c.stopped or "sms"
            props = {"channel": channel, "body": START_WORDS[int(rnd() * len(START_WORDS))]}
        elif code == _UNSUBSCRIBED:
            name = "Unsubscribed"
            options = [*c.channels(), "all", "all"]
            if c.email:
                options += ["email", "email"]
            c.unsub = options[int(rnd() * len(options))]
            props = {"channel": c.unsub}
        elif code == _SUBSCRIBED:
            name = "Subscribed"
            props = {"channel": c.unsub or "email"}
            c.unsub = None
        elif code == _SUPPORT_TICKET:
            name = "Support Ticket Opened"
            self._tickets += 1
            subject = TICKET_SUBJECTS[int(rnd() * len(TICKET_SUBJECTS))]
            props = {"ticket_id": f"t-{self.seed}-{self._tickets:05d}", "subject": subject}
        elif code == _FRAUD_SUSPECTED:
            name = "Fraud Suspected"
            props = {
                "order_id": c.last_order,
                "score": round(0.8 + rnd() * 0.19, 2),
                "reason": FRAUD_REASONS[int(rnd() * len(FRAUD_REASONS))],
            }
        else:  # _IDENTIFY_UPDATE
            return {
                "type": "identify",
                "userId": c.uid,
                "timestamp": self.stamp(ts),
                "traits": self.trait_update(c),
                "messageId": self.message_id(),
            }
        return {
            "type": "track",
            "userId": c.uid,
            "event": name,
            "timestamp": self.stamp(ts),
            "properties": props,
            "messageId": self.message_id(),
        }

    def sku_of(self, c: _Customer) -> int:
        """The product the customer last looked at, or any product."""
        if c.sku < 0:
            c.sku = int(self.rng.random() * CATALOG_SIZE)
        return c.sku

    def trait_update(self, c: _Customer) -> dict[str, Any]:
        """A later identify: the customer adds a way to reach them."""
        rng = self.rng
        if not c.phone:
            c.phone = True
            c.whatsapp = rng.random() < c.region.whatsapp
            return {"phone": c.region.phone(rng), "whatsapp_opt_in": c.whatsapp}
        if not c.whatsapp:
            c.whatsapp = True
            return {"whatsapp_opt_in": True}
        if not c.push:
            c.push = True
            return {"push_token": f"tok-{rng.getrandbits(64):016x}"}
        if not c.email:
            c.email = True
            return {"email": f"{c.uid}@example.com"}
        return {"plan": PLANS[int(rng.random() * len(PLANS))]}


def _to_unix(start: datetime) -> int:
    """Whole unix seconds of `start`; a naive datetime is taken to be UTC."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return int(start.timestamp())


def generate_events(
    customers: int,
    days: int,
    seed: int,
    start: datetime,
    *,
    events_per_customer: float | None = None,
    mix: str | EventMix = "default",
    plant: PlantedLift | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield a synthetic event log as Segment-shaped dicts, in nondecreasing timestamp order.

    Every customer appears in `[start, start + days)`; about `events_per_customer`
    events each on average (default: the mix's, else `default_events_per_customer(days)`;
    about 3 is the floor, what a customer does besides sessions). `mix` is an `EventMix`
    or the name of one in `MIXES`. Memory grows with the number of customers, not the
    number of events. A naive `start` is taken as UTC; timestamps are whole seconds.
    `plant` adds goal events for treated customers.
    """
    if customers < 0:
        raise ValueError(f"customers must be >= 0, got {customers}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if isinstance(mix, str):
        if mix not in MIXES:
            raise ValueError(f"unknown mix {mix!r}; known: {', '.join(MIXES)}")
        mix = MIXES[mix]
    if events_per_customer is None:
        events_per_customer = mix.events_per_customer
    if events_per_customer is None:
        target = default_events_per_customer(days)
    elif events_per_customer <= 0:
        raise ValueError(f"events_per_customer must be > 0, got {events_per_customer}")
    else:
        target = float(events_per_customer)
    return _Stream(customers, days, seed, start, target, mix, plant).run()


def _malformed(rng: random.Random, event: dict[str, Any], line: bytes) -> bytes:
    """A bad line derived from a good one, of a kind the log reader must reject."""
    kind = int(rng.random() * 9)
    bad = dict(event)
    if kind == 0:
        text = line.decode()
        return text[: max(1, len(text) // 2)].encode()  # cut off mid-write, valid UTF-8
    if kind == 1:
        del bad["userId"]
    elif kind == 2:
        bad["timestamp"] = "yesterday at noon"
    elif kind == 3:
        bad["timestamp"] = str(event["timestamp"]).rstrip("Z")  # no offset
    elif kind == 4:
        bad["userId"] = 40_000 + int(rng.random() * 1000)
    elif kind == 5:
        bad["type"] = "page"
    elif kind == 6:
        bad["properties"] = ["not", "an", "object"]
    elif kind == 7:
        return b'["' + str(event["userId"]).encode() + b'", "not an object"]'
    else:
        bad["type"] = "track"
        bad.pop("event", None)
    return orjson.dumps(bad)


def write_log(
    path: Path | str | BinaryIO,
    customers: int,
    days: int,
    seed: int,
    start: datetime,
    *,
    events_per_customer: float | None = None,
    duplicate_rate: float = DEFAULT_DUPLICATE_RATE,
    malformed_rate: float = 0.0,
    mix: str | EventMix = "default",
    progress: Callable[[int], None] | None = None,
    plant: PlantedLift | None = None,
) -> int:
    """Write `generate_events(...)` to `path` (a file, or an open binary stream such as
    stdout: the same bytes either way) as JSON Lines; return the lines written.
    `progress` is told the lines written so far, every few thousand.

    A seeded `duplicate_rate` share of events is written twice in a row (an exact
    re-send, same `messageId`), and before a `malformed_rate` share a bad line is
    inserted (truncated JSON, a missing or mistyped field, an unparsable timestamp).
    Both use their own random stream, so the good events are the same whatever the
    rates. Same arguments: the same bytes.
    """
    for rate_name, rate in (("duplicate_rate", duplicate_rate), ("malformed_rate", malformed_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{rate_name} must be between 0 and 1, got {rate}")
    events = generate_events(
        customers,
        days,
        seed,
        start,
        events_per_customer=events_per_customer,
        mix=mix,
        plant=plant,
    )
    inject = random.Random(seed * 1_000_003 + 17)
    rnd = inject.random
    dumps = orjson.dumps
    written = 0
    buffer: list[bytes] = []
    target: contextlib.AbstractContextManager[BinaryIO] = (
        open(path, "wb") if isinstance(path, str | Path) else contextlib.nullcontext(path)  # noqa: SIM115
    )
    with target as out:
        for event in events:
            line = dumps(event)
            if malformed_rate and rnd() < malformed_rate:
                buffer.append(_malformed(inject, event, line) + b"\n")
            buffer.append(line + b"\n")
            if duplicate_rate and rnd() < duplicate_rate:
                buffer.append(line + b"\n")
            if len(buffer) >= 4096:
                written += len(buffer)
                out.writelines(buffer)
                buffer.clear()
                if progress is not None:
                    progress(written)
        written += len(buffer)
        out.writelines(buffer)
    return written
