"""The support agent's customer context pane: who, consents, journeys, caps, and why."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from omniconsole.adapters.store.console_rows import CustomerRecord
from omniconsole.tui import present
from omniconsole.tui.format import bar, short_time, style_for
from omniconsole.tui.screens.base import ViewScreen, fill_table, matches_filter
from omniconsole.tui.snapshot import CustomerLookup, Snapshot

__all__ = ["CustomerScreen"]

_OUTCOME_MARK = {"sent": "✓", "deferred": "⏸", "suppressed": "✗", "failed": "!"}


def _section(title: str, body: RenderableType) -> Group:
    return Group(Text(title, style="bold underline"), body)


class CustomerScreen(ViewScreen):
    """Find a customer by id, email or phone, and see everything about them, live."""

    VIEW = "customer"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "find", "Find", show=True),
    ]

    def compose_body(self) -> ComposeResult:
        """Search box, match list, then profile/consents/journeys/caps beside the timeline."""
        yield Input(placeholder="Find a customer: id, email or phone — Enter", id="customer-search")
        yield Static(id="customer-message", classes="hint")
        matches: DataTable[str | Text] = DataTable(id="customer-matches", cursor_type="row")
        for label in ("Customer", "Email", "Phone"):
            matches.add_column(label, key=label.lower())
        yield matches
        with VerticalScroll(id="customer-scroll"), Horizontal(id="customer-columns"):
            with Vertical(id="customer-left"):
                yield Static(id="customer-profile")
                yield Static(id="customer-consents")
                yield Static(id="customer-journeys")
                yield Static(id="customer-caps")
            with Vertical(id="customer-right"):
                yield Static(id="customer-timeline")

    def on_screen_resume(self) -> None:
        """Show the app's customer query (focus the search box when there is none)."""
        self.sync_query()
        super().on_screen_resume()

    def sync_query(self) -> None:
        """Put the app's customer query in the search box; focus the pane or the box."""
        query = self.host.customer_query
        search = self.query_one("#customer-search", Input)
        search.value = query or ""
        if query:
            self.query_one("#customer-scroll").focus()
        else:
            search.focus()

    def action_find(self) -> None:
        """Focus the search box."""
        search = self.query_one("#customer-search", Input)
        search.value = ""
        search.focus()

    @on(Input.Submitted, "#customer-search")
    def _search(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.host.open_customer(event.value.strip())
            self.query_one("#customer-scroll").focus()

    @on(DataTable.RowSelected, "#customer-matches")
    def _pick(self, event: DataTable.RowSelected) -> None:
        self.host.open_customer(str(event.row_key.value))

    def render_snapshot(self, snapshot: Snapshot) -> None:
        """Show the lookup result: nothing yet, no match, several matches, or one context."""
        lookup = snapshot.customer
        message = self.query_one("#customer-message", Static)
        matches = self.query_one("#customer-matches", DataTable)
        scroll = self.query_one("#customer-scroll")
        if lookup is None:
            message.update(
                "Type an id, email or phone above (or :customer QUERY from any view). "
                f"{snapshot.status.customers} customers in the store."
            )
            matches.display = scroll.display = False
            return
        if lookup.record is None:
            scroll.display = False
            if not lookup.matches:
                message.update(
                    Text.assemble(
                        ("No customer matches ", ""),
                        (repr(lookup.query), "bold"),
                        " — try an exact id, email or E.164 phone, or the start of an id.",
                    )
                )
                matches.display = False
            else:
                message.update(
                    f"{len(lookup.matches)} customers match {lookup.query!r}: Enter opens one."
                )
                matches.display = True
                fill_table(
                    matches,
                    [
                        (m.customer, [m.customer, m.email or "", m.phone or ""])
                        for m in lookup.matches
                    ],
                )
            return
        matches.display = False
        scroll.display = True
        self._render_context(lookup, lookup.record)

    def _render_context(self, lookup: CustomerLookup, ctx: CustomerRecord) -> None:
        variables = self.app.theme_variables
        self.query_one("#customer-message", Static).update(
            Text.assemble(
                ("Customer ", ""),
                (ctx.customer, "bold"),
                f" · {ctx.email or 'no email'} · {ctx.phone or 'no phone'}"
                f" · updated {short_time(ctx.updated_at)}",
            )
        )
        profile = Table.grid(padding=(0, 1))
        profile.add_column(style="bold")
        profile.add_column(overflow="fold")
        for key, value in present.profile_facts(ctx):
            profile.add_row(key, value)
        self.query_one("#customer-profile", Static).update(_section("Profile", profile))

        consents = Table.grid(padding=(0, 1))
        consents.add_column(style="bold")
        consents.add_column()
        consents.add_column(overflow="fold")
        for c in present.consents(ctx):
            state = (
                Text("usable", style_for(variables, "sent"))
                if c.usable
                else Text(
                    "opted out" if c.opted_out and c.address else "unusable",
                    style_for(variables, "suppressed"),
                )
            )
            consents.add_row(c.channel, state, c.note if not c.usable else (c.address or ""))
        self.query_one("#customer-consents", Static).update(_section("Consents", consents))

        journeys = Table.grid(padding=(0, 1))
        journeys.add_column(style="bold")
        journeys.add_column()
        journeys.add_column(overflow="fold")
        for j in ctx.instances:
            if j.status == "active" and j.next_step:
                nxt = f"next {j.next_step} due {short_time(j.next_due)}"
            elif j.status == "active":
                nxt = "waiting for an event"
            else:
                nxt = f"ended {short_time(j.ended_at)}"
            journeys.add_row(f"{j.journey} #{j.instance}", j.status, nxt)
        if not ctx.instances:
            journeys.add_row("none", "", "")
        self.query_one("#customer-journeys", Static).update(_section("Journeys", journeys))

        caps = Table.grid(padding=(0, 1))
        caps.add_column(style="bold")
        caps.add_column()
        caps.add_column()
        for u in ctx.caps:
            full = u.used >= u.cap.limit
            caps.add_row(
                u.cap.reason,
                Text(
                    bar(u.used, u.cap.limit, 10),
                    style_for(variables, "suppressed" if full else "sent"),
                ),
                f"{u.used}/{u.cap.limit}" + (" full" if full else ""),
            )
        self.query_one("#customer-caps", Static).update(
            _section(f"Cap usage at {short_time(ctx.clock)}", caps)
        )

        timeline = Table(
            box=None, expand=True, show_header=True, header_style="bold", padding=(0, 1)
        )
        timeline.add_column("When", no_wrap=True, width=11)
        timeline.add_column("What", ratio=2, overflow="fold")
        timeline.add_column("Why", ratio=3, overflow="fold")
        shown = 0
        for item in present.timeline(ctx):
            text = f"{item.title} {item.channel or ''} {item.outcome or ''} {item.reason or ''} {item.why}"
            if not matches_filter(text, self.filter_text):
                continue
            shown += 1
            if item.kind == "event":
                what = Text.assemble(("● ", "dim"), item.title)
                why = Text(item.why, style="dim")
            else:
                outcome = item.outcome or ""
                style = style_for(variables, outcome)
                what = Text.assemble(
                    (f"{_OUTCOME_MARK.get(outcome, '?')} {outcome} ", style),
                    f"{item.title} on {item.channel or 'no channel'}",
                )
                why = Text.assemble((f"{item.reason}: " if item.reason else "", style), item.why)
            timeline.add_row(short_time(item.at), what, why)
        title = f"Timeline, newest first ({ctx.events_total} events"
        title += f", {ctx.decisions_total} decisions)"
        if self.filter_text:
            title += f" — {shown} match “{self.filter_text}”"
        self.query_one("#customer-timeline", Static).update(_section(title, timeline))
