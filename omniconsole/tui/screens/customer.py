"""The support agent's customer pane: who, consents, journeys, caps, and why — and the
actions an agent may take for a customer on the phone (through the running service)."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from omniconsole.adapters.store.console_rows import CHANNELS, CustomerRecord
from omniconsole.domain.operator import ConsentChange, OperatorActions, OperatorError
from omniconsole.tui import present
from omniconsole.tui.explanation_view import why_text
from omniconsole.tui.format import bar, short_time, style_for
from omniconsole.tui.screens.base import ViewScreen, fill_table, matches_filter
from omniconsole.tui.screens.consent import ConsentDialog, ConsentRequest
from omniconsole.tui.snapshot import CustomerLookup, Snapshot
from omniconsole.tui.timeline import timeline
from omniconsole.tui.widgets import ViewTable

__all__ = ["CustomerScreen"]

_OUTCOME_MARK = {"sent": "✓", "deferred": "⏸", "suppressed": "✗", "failed": "!", "digested": "↳"}


def _indented(text: Text) -> Table:
    """`text` wrapped under a 4-column indent (every line of it)."""
    grid = Table.grid(expand=True)
    grid.add_column(width=4)
    grid.add_column(ratio=1)
    grid.add_row("", text)
    return grid


def _section(title: str, body: RenderableType) -> Group:
    return Group(Text(title, style="bold underline"), body)


class SearchBox(Input):
    """The find box: Enter searches, Esc hands the keys back to the console."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "leave", "Leave", show=False)]

    def action_leave(self) -> None:
        """Esc: stop typing here."""
        self.screen.set_focus(None)


class CustomerScreen(ViewScreen):
    """Find a customer by id, phone, email or name, and see everything about them, live."""

    VIEW = "customer"
    # never the find box: keys typed on arrival are commands (`2` opens Handoffs)
    AUTO_FOCUS = "#customer-scroll, #customer-matches"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "find", "Find", show=True),
        Binding("o", "consent(False)", "Opt out", show=False),
        Binding("i", "consent(True)", "Opt in", show=False),
        Binding("y", "yank", "Yank", show=True),
    ]

    def compose_body(self) -> ComposeResult:
        """Search box, match list, then the timeline beside (narrow: above) the facts."""
        yield SearchBox(
            placeholder="f: find a customer — id, phone (any format), email or name; Enter",
            id="customer-search",
        )
        yield Static(id="customer-message", classes="hint")
        matches: DataTable[str | Text] = ViewTable(id="customer-matches", cursor_type="row")
        for label in ("Customer", "Name", "Email", "Phone"):
            matches.add_column(label, key=label.lower())
        yield matches
        with VerticalScroll(id="customer-scroll"), Horizontal(id="customer-columns"):
            with Vertical(id="customer-right"):
                yield Static(id="customer-timeline")
            with Vertical(id="customer-left"):
                yield Static(id="customer-consents")
                yield Static(id="customer-channels")
                yield Static(id="customer-journeys")
                yield Static(id="customer-caps")
                yield Static(id="customer-profile")
                yield Static(id="customer-why")

    def on_screen_resume(self) -> None:
        """Show the app's customer query."""
        self.sync_query()
        super().on_screen_resume()

    def sync_query(self) -> None:
        """Put the app's customer query in the search box."""
        search = self.query_one("#customer-search", Input)
        if not search.has_focus:
            search.value = self.host.customer_query or ""

    def main_widget(self) -> Widget | None:
        """The pane when a customer is shown, else the match list when it is shown."""
        scroll = self.query_one("#customer-scroll")
        if scroll.display:
            return scroll
        matches = self.query_one("#customer-matches", DataTable)
        return matches if matches.display else None

    def action_find(self) -> None:
        """Focus the search box."""
        search = self.query_one("#customer-search", Input)
        search.value = ""
        search.focus()

    @on(Input.Submitted, "#customer-search")
    def _search(self, event: Input.Submitted) -> None:
        event.stop()
        self.set_focus(None)  # typed keys are commands again
        if event.value.strip():
            self.host.open_customer(event.value.strip())

    @on(DataTable.RowSelected, "#customer-matches")
    def _pick(self, event: DataTable.RowSelected) -> None:
        self.host.open_customer(str(event.row_key.value))

    def render_snapshot(self, snapshot: Snapshot) -> None:
        """Show the lookup result: nothing yet, no match, several matches, or one customer."""
        lookup = snapshot.customer
        message = self.query_one("#customer-message", Static)
        matches = self.query_one("#customer-matches", DataTable)
        scroll = self.query_one("#customer-scroll")
        if lookup is None:
            message.update(
                "Press f and type an id, a phone number, an email or a name (or :customer QUERY"
                f" from any view). {snapshot.status.customers:,} customers in the store."
            )
            self._hide(matches, scroll)
            return
        if lookup.record is None:
            self._hide(scroll)
            if not lookup.matches:
                message.update(
                    Text.assemble(
                        ("No customer matches ", ""),
                        (repr(lookup.query), "bold"),
                        " — try an id, a phone number, the start of an email or a name.",
                    )
                )
                self._hide(matches)
            else:
                more = " (the first 20)" if len(lookup.matches) >= 20 else ""
                message.update(
                    f"{len(lookup.matches)} customers match {lookup.query!r}{more}: "
                    "Enter opens one."
                )
                matches.display = True
                fill_table(
                    matches,
                    [
                        (m.customer, [m.customer, m.name or "", m.email or "", m.phone or ""])
                        for m in lookup.matches
                    ],
                )
            return
        self._hide(matches)
        scroll.display = True
        self._render_record(lookup, lookup.record)

    def _hide(self, *widgets: Widget) -> None:
        """Hide `widgets`; a hidden widget's focus goes nowhere (Textual would hand it to
        the next sibling — the find box — and typed commands would land in it)."""
        for widget in widgets:
            if widget.has_focus or widget.has_focus_within:
                self.set_focus(None)
            widget.display = False

    def _render_record(self, lookup: CustomerLookup, ctx: CustomerRecord) -> None:
        variables = self.app.theme_variables
        self.query_one("#customer-message", Static).update(
            Text.assemble(
                ("Customer ", ""),
                (ctx.customer, "bold"),
                f" · {ctx.email or 'no email'} · {ctx.phone or 'no phone'}"
                f" · updated {short_time(ctx.updated_at)}",
            )
        )
        self._render_timeline(ctx, variables)
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
        title = "Consents (o opt out · i opt in)" if self.host_operator() else "Consents"
        self.query_one("#customer-consents", Static).update(_section(title, consents))

        channels = self.query_one("#customer-channels", Static)
        lines = present.channel_lines(ctx)
        channels.display = bool(lines)
        if lines:
            grid = Table.grid(padding=(0, 1))
            grid.add_column(style="bold")
            grid.add_column(overflow="fold")
            for label, value in lines:
                grid.add_row(label, value)
            channels.update(_section("Channels (engaged/sent)", grid))

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
        profile = Table.grid(padding=(0, 1))
        profile.add_column(style="bold")
        profile.add_column(overflow="fold")
        for key, value in present.profile_facts(ctx):
            profile.add_row(key, value)
        self.query_one("#customer-profile", Static).update(_section("Profile", profile))
        self.query_one("#customer-why", Static).update(
            _section(
                "Why — each message's causal chain (the customer re-run, as `explain`)",
                why_text(lookup.explanation, variables, self.filter_text),
            )
        )

    def _render_timeline(self, ctx: CustomerRecord, variables: dict[str, str]) -> None:
        """One entry per event, decision or skipped step: a line saying when and what,
        then, indented, why and what the message said (reads at 80 columns too)."""
        lines: list[RenderableType] = []
        shown = 0
        for item in timeline(ctx):
            text = (
                f"{item.title} {item.channel or ''} {item.outcome or ''} {item.reason or ''} "
                f"{item.why} {item.detail}"
            )
            if not matches_filter(text, self.filter_text):
                continue
            shown += 1
            head = Text(f"{short_time(item.at)}  ", style="bold")
            if item.kind == "event":
                head.append("● ", style="dim")
                head.append(item.title)
            elif item.kind == "skipped":
                head.append("– skipped ", style="dim bold")
                head.append(item.title)
            else:
                outcome = item.outcome or ""
                style = style_for(variables, outcome)
                head.append(f"{_OUTCOME_MARK.get(outcome, '?')} {outcome} ", style=style)
                head.append(f"{item.title} on {item.channel or 'no channel'}")
            lines.append(head)
            if item.kind == "message":
                why = Text()
                if item.reason:
                    why.append(f"{item.reason}: ", style=style_for(variables, item.outcome))
                why.append(item.why)
                lines.append(_indented(why))
                if item.detail:
                    lines.append(_indented(Text(item.detail, style="italic")))
            elif item.why:
                lines.append(_indented(Text(item.why, style="dim")))
        title = f"Timeline, newest first ({ctx.events_total:,} events"
        title += f", {ctx.decisions_total:,} decisions)"
        if self.filter_text:
            title += f" — {shown} match “{self.filter_text}”"
        self.query_one("#customer-timeline", Static).update(_section(title, Group(*lines)))

    # ---------------------------------------------------------------- agent actions

    def host_operator(self) -> OperatorActions | None:
        """The running service's agent actions, when the console was given them."""
        operator = getattr(self.app, "operator", None)
        return operator if operator is not None else None

    def _shown(self) -> CustomerRecord | None:
        snapshot = self.host.latest
        if snapshot is None or snapshot.customer is None:
            return None
        return snapshot.customer.record

    def action_consent(self, opt_in: bool) -> None:
        """`o` / `i`: record an opt-out or opt-in the customer asked for."""
        self.ask_consent("", opt_in=opt_in)

    def ask_consent(self, channel: str, *, opt_in: bool) -> None:
        """Confirm, then record through the service, an opt-out/in on `channel` (asked
        for in the dialog when empty)."""
        record = self._shown()
        if record is None:
            self.notify("Open a customer first.", severity="warning")
            return
        operator = self.host_operator()
        if operator is None:
            self.notify(
                "Agent actions go through the running service: start the console with"
                " --service URL and OMNICONSOLE_OPERATOR_KEY set.",
                severity="warning",
                timeout=8,
            )
            return
        if channel and channel not in CHANNELS:
            self.notify(f"No channel {channel!r}: {', '.join(CHANNELS)}", severity="warning")
            return
        request = ConsentRequest(record.customer, channel, opt_in, operator.agent,
                                 operator.describe())  # fmt: skip
        self.app.push_screen(ConsentDialog(request), self._confirmed)

    def _confirmed(self, request: ConsentRequest | None) -> None:
        if request is not None and request.channel:
            self._record(request)

    @work(thread=True, group="operator", name="agent action")
    def _record(self, request: ConsentRequest) -> None:
        """Ask the service (agent action worker thread); say what it answered."""
        operator = self.host_operator()
        if operator is None:
            return
        try:
            change = operator.record_consent(request.customer, request.channel,
                                             opt_in=request.opt_in)  # fmt: skip
        except OperatorError as exc:
            self.app.call_from_thread(self.notify, str(exc), title="Not recorded",
                                      severity="error", timeout=10)  # fmt: skip
            return
        self.app.call_from_thread(self._recorded, change)

    def _recorded(self, change: ConsentChange) -> None:
        verb = "opted in to" if change.opted_in else "opted out of"
        self.notify(
            f"{change.customer} {verb} {change.channel}, recorded by {change.agent}"
            + (" (already recorded)" if change.duplicate else ""),
            title="Recorded",
        )
        self.host.run_command("refresh")

    def action_yank(self) -> None:
        """Copy the shown customer's id (or the highlighted match's)."""
        record = self._shown()
        if record is not None:
            self.host.yank(record.customer)
            return
        matches = self.query_one("#customer-matches", DataTable)
        if matches.display and matches.row_count:
            self.host.yank(
                str(matches.coordinate_to_cell_key(matches.cursor_coordinate).row_key.value)
            )
