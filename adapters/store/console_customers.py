"""The console's reads about customers: finding one as an agent types, and everything
the store holds about one (the customer pane). SQL over one committed cut (`StoreCut`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from omniconsole.adapters.store.console_queries import (
    DECISION_COLS,
    NAME_SQL,
    StoreCut,
    decision_row,
    loads,
)
from omniconsole.adapters.store.console_rows import (
    CustomerCapUsage,
    CustomerMatch,
    CustomerRecord,
    DecisionRow,
    EventRow,
    InboxRow,
    InstanceRow,
    OutboxRow,
)
from omniconsole.adapters.store.console_search import phone_candidates
from omniconsole.domain.channel_summary import customer_channels
from omniconsole.domain.config import JourneyDef, Policy
from omniconsole.domain.profile import Profile
from omniconsole.domain.timeutil import format_timestamp

__all__ = ["CustomerQueries"]


class CustomerQueries:
    """Customer lookups inside one read transaction."""

    def __init__(self, cut: StoreCut) -> None:
        """Read through `cut`."""
        self.conn = cut.conn

    def customer_capped(self, customer: str, scope: str, since: str, until: str) -> int:
        """One customer's capped sends on `scope` in (since, until]."""
        sql = "SELECT COUNT(*) FROM cap_usage WHERE customer = ? AND at > ? AND at <= ?"
        args: list[object] = [customer, since, until]
        if scope != "all":
            sql += " AND channel = ?"
            args.append(scope)
        return int(self.conn.execute(sql, args).fetchone()[0])

    def customer_outcomes(self, customer: str) -> dict[str, int]:
        """outcome -> decisions of one customer."""
        return {
            str(o): int(n)
            for o, n in self.conn.execute(
                "SELECT outcome, COUNT(*) FROM ledger WHERE customer = ? GROUP BY outcome",
                (customer,),
            )
        }

    def _matches(self, where: str, args: Sequence[object], limit: int) -> list[CustomerMatch]:
        rows = self.conn.execute(
            f"SELECT customer, email, phone, {NAME_SQL}, updated_at FROM profiles WHERE {where}"
            " LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [CustomerMatch(r[0], r[1], r[2], r[3] or None, r[4]) for r in rows]

    def find_ids(self, customer: str) -> list[CustomerMatch]:
        """The profile whose id is exactly `customer`."""
        return self._matches("customer = ?", (customer,), 1)

    def find_phones(self, phones: Sequence[str], limit: int) -> list[CustomerMatch]:
        """Profiles holding one of `phones` (E.164)."""
        if not phones:
            return []
        marks = ", ".join("?" for _ in phones)
        return self._matches(f"phone IN ({marks}) ORDER BY customer", phones, limit)

    def find_email(self, text: str, limit: int) -> list[CustomerMatch]:
        """Profiles whose email is `text` or starts with it (any case), in email order."""
        low = text.lower()
        return self._matches(
            "(email >= ? AND email < ?) OR email = ? COLLATE NOCASE ORDER BY email",
            (low, low + "\U0010ffff", text),
            limit,
        )

    def find_email_containing(self, text: str, limit: int) -> list[CustomerMatch]:
        """Profiles whose email contains `text` anywhere (a scan: the last resort)."""
        return self._matches("instr(lower(email), ?) > 0 ORDER BY email", (text.lower(),), limit)

    def find_name(self, text: str, limit: int) -> list[CustomerMatch]:
        """Profiles whose name starts with `text` (any case), served by `profiles_name`."""
        low = " ".join(text.lower().split())
        return self._matches(
            f"{NAME_SQL} >= ? AND {NAME_SQL} < ? ORDER BY {NAME_SQL}, customer",
            (low, low + "\U0010ffff"),
            limit,
        )

    def find_id_prefix(self, prefix: str, limit: int) -> list[CustomerMatch]:
        """Profiles whose id starts with `prefix`, in id order."""
        return self._matches(
            "customer >= ? AND customer < ? ORDER BY customer", (prefix, prefix + "\U0010ffff"),
            limit,
        )  # fmt: skip

    def profile_row(self, customer: str) -> tuple[str, str | None, str | None, str, Any] | None:
        """(customer, email, phone, updated_at, decoded state) of one profile."""
        row = self.conn.execute(
            "SELECT customer, email, phone, updated_at, state FROM profiles WHERE customer = ?",
            (customer,),
        ).fetchone()
        if row is None:
            return None
        return row[0], row[1], row[2], row[3], loads(row[4])

    def customer_events(self, customer: str, limit: int) -> tuple[list[EventRow], int]:
        """The customer's latest events (newest first) and how many there are."""
        rows = self.conn.execute(
            "SELECT id, at, applied_at, type, name, late, payload FROM events "
            "WHERE customer = ? ORDER BY id DESC LIMIT ?",
            (customer, limit),
        ).fetchall()
        total = self.conn.execute(
            "SELECT COUNT(*) FROM events WHERE customer = ?", (customer,)
        ).fetchone()[0]
        events = []
        for r in rows:
            payload = loads(r[6])
            events.append(
                EventRow(int(r[0]), r[1], r[2], r[3], r[4], bool(r[5]),
                         payload if isinstance(payload, Mapping) else {})
            )  # fmt: skip
        return events, int(total)

    def customer_decisions(self, customer: str, limit: int) -> tuple[list[DecisionRow], int]:
        """The customer's latest decisions (newest first) and how many there are."""
        rows = self.conn.execute(
            f"SELECT {DECISION_COLS} FROM ledger WHERE customer = ? "
            "ORDER BY at DESC, seq DESC LIMIT ?",
            (customer, limit),
        ).fetchall()
        total = self.conn.execute(
            "SELECT COUNT(*) FROM ledger WHERE customer = ?", (customer,)
        ).fetchone()[0]
        return [decision_row(r) for r in rows], int(total)

    def customer_outbox(self, customer: str, limit: int = 200) -> dict[str, OutboxRow]:
        """The customer's live sends (rendered, with their status) by message id."""
        out: dict[str, OutboxRow] = {}
        for message_id, channel, status, payload in self.conn.execute(
            "SELECT message_id, channel, status, payload FROM main.outbox WHERE customer = ?"
            " ORDER BY decided_at DESC LIMIT ?",
            (customer, limit),
        ):
            raw = loads(payload)
            raw = raw if isinstance(raw, Mapping) else {}
            out[message_id] = OutboxRow(
                message_id, channel, status, str(raw.get("subject", "")),
                str(raw.get("text", "")), str(raw.get("detail", "")),
            )  # fmt: skip
        return out

    def customer_inbox(self, customer: str, limit: int = 200) -> dict[str, InboxRow]:
        """The customer's in-app messages by message id."""
        return {
            r[0]: InboxRow(r[0], r[1], r[2], r[3], bool(r[4]))
            for r in self.conn.execute(
                "SELECT message_id, at, subject, body, read FROM inbox WHERE customer = ?"
                " ORDER BY at DESC LIMIT ?",
                (customer, limit),
            )
        }

    def customer_instances(self, customer: str, limit: int = 50) -> list[InstanceRow]:
        """The customer's journey instances, live ones first, newest first."""
        return [
            InstanceRow(r[0], int(r[1]), r[2], r[3], r[4], r[5], r[6])
            for r in self.conn.execute(
                "SELECT journey, instance, status, entered_at, ended_at, next_step, next_due "
                "FROM journey_instances WHERE customer = ? "
                "ORDER BY (status = 'active') DESC, entered_at DESC LIMIT ?",
                (customer, limit),
            )
        ]

    def find(self, query: str, limit: int = 20) -> tuple[CustomerMatch, ...]:
        """Customers an agent may mean by `query`: an id, a phone number in any common
        format, an email or its start, a name or its start, the start of an id; an email
        fragment found anywhere in the address as the last resort."""
        query = query.strip()
        if not query:
            return ()
        cut = self
        found: dict[str, CustomerMatch] = {}

        def take(matches: Sequence[CustomerMatch]) -> None:
            for m in matches:
                if len(found) < limit:
                    found.setdefault(m.customer, m)

        take(cut.find_ids(query))
        take(cut.find_phones(phone_candidates(query), limit))
        if not found and not query.lstrip("+(").replace(" ", "").isdigit():
            take(cut.find_email(query, limit))
            take(cut.find_name(query, limit))
            take(cut.find_id_prefix(query, limit))
            if not found and ("@" in query or "." in query):
                take(cut.find_email_containing(query, limit))
        return tuple(found.values())

    def record(
        self,
        customer: str,
        now: datetime | None,
        policy: Policy | None,
        journeys: Sequence[JourneyDef],
        config_dir: str | None,
        events: int = 60,
        decisions: int = 60,
    ) -> CustomerRecord | None:
        """Everything about one customer as of `now`, or None when there is no such
        profile (`policy`, `journeys`, `config_dir`: the run's, to read it by)."""
        cut = self
        row = cut.profile_row(customer)
        if row is None:
            return None
        name, email, phone, updated_at, state = row
        state = state if isinstance(state, dict) else {}
        try:
            profile: Profile | None = Profile.from_json(state)
        except (KeyError, TypeError, ValueError, AttributeError):
            profile = None
        usage: list[CustomerCapUsage] = []
        for cap in () if policy is None else policy.caps:
            used = 0
            if now is not None:
                used = cut.customer_capped(name, cap.scope, format_timestamp(now - cap.window),
                                           format_timestamp(now))  # fmt: skip
            usage.append(CustomerCapUsage(cap, used))
        event_rows, events_total = cut.customer_events(name, events)
        decision_rows, decisions_total = cut.customer_decisions(name, decisions)
        return CustomerRecord(
            customer=name,
            email=email,
            phone=phone,
            updated_at=updated_at,
            profile=profile,
            state=state,
            events=tuple(event_rows),
            events_total=events_total,
            decisions=tuple(decision_rows),
            decisions_total=decisions_total,
            instances=tuple(cut.customer_instances(name)),
            caps=tuple(usage),
            clock=None if now is None else format_timestamp(now),
            journeys={d.name: d for d in journeys},
            config_dir=config_dir,
            outbox=cut.customer_outbox(name),
            inbox=cut.customer_inbox(name),
            channels=None if profile is None else customer_channels(profile, policy, journeys, now),
        )
