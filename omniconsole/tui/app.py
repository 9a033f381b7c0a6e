"""The operator console: a thin Textual app wiring views, the store poller and the demo.

`omniconsole console --db PATH` calls `run_console`; `omniconsole demo` calls
`run_demo`. Queries run on a thread worker that only posts coalescing
`StoreUpdated` messages back, so the event loop never waits on the store.

Just over 400 lines: every view, key, `:` command and worker meets here; what the
views draw lives in `screens/`, the words in `present`, the data in `snapshot`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable
from textual.worker import get_current_worker

from omniconsole.adapters.store.console import ConsoleReader
from omniconsole.adapters.store.console_rows import DecisionFilter, StoreStatus
from omniconsole.domain.operator import OperatorActions
from omniconsole.domain.timeutil import parse_timestamp
from omniconsole.tui.commands import ConsoleCommands, command_list, parse_command
from omniconsole.tui.gc_pauses import quiet_collector
from omniconsole.tui.messages import DemoFinished, StoreUpdated, ViewPrefetched
from omniconsole.tui.present import header_parts
from omniconsole.tui.screens.base import ViewScreen
from omniconsole.tui.screens.caps import CapsScreen
from omniconsole.tui.screens.channels import ChannelsScreen
from omniconsole.tui.screens.customer import CustomerScreen
from omniconsole.tui.screens.decisions import DecisionsScreen, HandoffsScreen
from omniconsole.tui.screens.help import HelpScreen
from omniconsole.tui.screens.journeys import JourneysScreen
from omniconsole.tui.screens.outcomes import OutcomesScreen
from omniconsole.tui.snapshot import PageRequest, PollRequest, Snapshot, SnapshotCollector
from omniconsole.tui.warmup import prepare_view

if TYPE_CHECKING:  # the replay engine loads only for a demo or `--tui` (~100 ms of a start)
    from omniconsole.engine.replay import ReplayOptions
    from omniconsole.tui.demo import DemoRunner

__all__ = ["ConsoleApp", "run_console", "run_demo", "run_replay_console"]

DARK, LIGHT = "textual-dark", "textual-light"
#: seconds after the first screen with data before the other views are made ready
PREPARE_AFTER = 0.2
_VIEWS: dict[str, Callable[[], Screen[Any]]] = {
    "journeys": JourneysScreen,
    "handoffs": HandoffsScreen,
    "caps": CapsScreen,
    "channels": ChannelsScreen,
    "customer": CustomerScreen,
    "decisions": DecisionsScreen,
    "outcomes": OutcomesScreen,
}


class ConsoleApp(App[None]):
    """The console attached (read-only) to one store, optionally running a demo replay."""

    CSS_PATH = "console.tcss"
    TITLE = "omniconsole"
    COMMANDS: ClassVar = App.COMMANDS | {ConsoleCommands}
    MODES: ClassVar = dict(_VIEWS)
    DEFAULT_MODE = "journeys"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (Textual's own type)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("colon", "command_line", "Cmd", key_display=":"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("question_mark", "help", "Keys", key_display="?"),
        Binding("1", "show_view('journeys')", "Journeys"),
        Binding("2", "show_view('handoffs')", "Handoffs"),
        Binding("3", "show_view('caps')", "Caps"),
        Binding("4", "show_view('channels')", "Channels"),
        Binding("5", "show_view('customer')", "Customer"),
        Binding("6", "show_view('decisions')", "Decisions"),
        # not in the footer line (full already): `?`, `:outcomes` and the palette list it
        Binding("7", "show_view('outcomes')", "Outcomes", show=False),
        Binding("space", "demo_pause", "Pause"),
        Binding("plus,equals_sign", "demo_faster", "Faster", key_display="+"),
        Binding("minus", "demo_slower", "Slower", key_display="-"),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        db: Path | str,
        *,
        demo: DemoRunner | None = None,
        poll_interval: float = 0.2,
        theme: str = DARK,
        operator: OperatorActions | None = None,
        store_label: str | None = None,
    ) -> None:
        """Attach to `db`; poll it every `poll_interval` seconds (≥ 4×/s by default).

        `operator`: the running service's agent actions (None: not available).
        `store_label`: how the header names the store (default: its path)."""
        super().__init__()
        # a `postgresql://` URL stays text (a Path would fold its `//`)
        self.db: Path | str = db if isinstance(db, str) and "://" in db else Path(db)
        self.demo = demo
        self.operator = operator
        self.poll_interval = poll_interval
        self.theme = theme
        #: The newest snapshot (event loop only).
        self.latest: Snapshot | None = None
        #: How many snapshots arrived (tests wait on it).
        self.snapshots_seen = 0
        self._request = PollRequest()
        #: the poll worker's collector (its snapshots are also read here, never changed)
        self._collector = SnapshotCollector(ConsoleReader(self.db))
        #: how the header names the store (never a URL's password)
        self.store_label = store_label or self._collector.reader.where
        #: The customer the pane shows (id, email, phone or name as typed).
        self.customer_query: str | None = None
        self._pages: dict[str, PageRequest] = {
            "decisions": PageRequest(),
            "handoffs": PageRequest(DecisionFilter(handoffs=True)),
        }
        self._history: list[str] = []
        self._wake = threading.Event()
        self._stopping = False
        self._demo_error: str | None = None
        self._demo_done = False
        self._restore_gc: Callable[[], None] | None = None
        #: other views' requests the poll worker fetches once, after the first screen
        #: (filled on the loop, taken on the poll thread: a deque's ends are atomic)
        self._prefetch: deque[PollRequest] = deque()
        self._prefetch_planned = False
        self._to_prepare: deque[Snapshot] = deque()
        self._preparing = False
        #: views made ready before their key was first pressed (tests and benchmarks)
        self.views_prepared: set[str] = set()

    # ---------------------------------------------------------------- lifecycle

    def on_load(self) -> None:
        """Before the screens are built: the console's garbage collection (`gc_pauses`)."""
        self._restore_gc = quiet_collector()

    def on_mount(self) -> None:
        """Start polling; start the demo replay if there is one."""
        self._poll_store()
        if self.demo is not None:
            self._run_demo()

    def on_unmount(self) -> None:
        """Let the worker threads finish promptly."""
        self._stopping = True
        self._wake.set()
        if self._restore_gc is not None:
            self._restore_gc()
        if self.demo is not None and not self._demo_done:
            self.demo.pacer.stop()

    @work(thread=True, exclusive=True, group="poll", name="store poller")
    def _poll_store(self) -> None:
        """Poll loop (poll worker thread): collect, post a new snapshot, wait."""
        worker = get_current_worker()
        collector = self._collector
        posted: Snapshot | None = None
        try:
            while not worker.is_cancelled and not self._stopping:
                self._wake.clear()
                snapshot = self._collect(self._request)
                if snapshot is not posted:  # nothing new: the screen stays as it is
                    posted = snapshot
                    self.post_message(StoreUpdated(snapshot))
                if self._prefetch and not self._wake.is_set():
                    # one other view at a time, then the visible one again first
                    ahead = self._collect(self._prefetch.popleft())
                    if ahead.status.ready and ahead.error is None:
                        self.post_message(ViewPrefetched(ahead))
                    continue
                self._wake.wait(self.poll_interval)
        finally:
            collector.reader.close()

    def _collect(self, request: PollRequest) -> Snapshot:
        """One snapshot for `request` (poll worker thread); a failure becomes its error."""
        collector = self._collector
        try:
            return collector.collect(request)
        except Exception as exc:  # a bug must not kill the console silently
            where = collector.reader.where  # never a URL's password
            status = StoreStatus(where, "error", f"store read failed: {exc!r}")
            collector.reader.close()
            collector.last = None
            return Snapshot(collector.seq, request, status, error=status.detail)

    @work(thread=True, group="demo", name="demo replay")
    def _run_demo(self) -> None:
        """Run the demo replay (demo worker thread); report when it ends."""
        assert self.demo is not None
        try:
            self.demo.run()
        except Exception as exc:
            self.post_message(DemoFinished(f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(DemoFinished(None))

    def on_store_updated(self, message: StoreUpdated) -> None:
        """Keep the newest snapshot and show it on the visible view."""
        if message.snapshot is self.latest:
            return  # already shown (a view switched to with the snapshot it had)
        self.latest = message.snapshot
        self.snapshots_seen += 1
        if self._stopping or not self.screen_stack:
            return  # a snapshot that arrived while the app shuts down
        if isinstance(self.screen, ViewScreen):
            self.screen.show(message.snapshot)
        status = message.snapshot.status
        # (a store whose run has not said what it is yet, being created, counts as running)
        replaying = status.mode is None or (status.mode == "replay" and status.status == "running")
        if not self._prefetch_planned and status.ready and not replaying:
            # Not while a replay runs: its commits several times a second would outdate
            # the views before their key is pressed, and making them ready would take CPU
            # from the replay; once it has finished (or for a store at rest, or live
            # under `serve`), the views are made ready once.
            self._prefetch_planned = True
            # a moment after the first screen is drawn: nothing competes with drawing it
            self.set_timer(PREPARE_AFTER, self._plan_prefetch)

    def _plan_prefetch(self) -> None:
        """The first screen with data is drawn: fetch the other views' data once, in key
        order, so each can be made ready before its key is pressed."""
        self._prefetch.extend(
            self._request_for(view) for view in _VIEWS if view != self.current_mode
        )
        self._wake.set()

    def on_view_prefetched(self, message: ViewPrefetched) -> None:
        """Make that view ready before its key is pressed (see `tui.warmup`), on a task
        of its own: keys and snapshots keep flowing meanwhile."""
        self._to_prepare.append(message.snapshot)
        if not self._preparing:
            self._preparing = True
            self._prepare_views()

    # exit_on_error off: a view not made ready is only slower to open
    @work(group="prepare", name="views made ready", exit_on_error=False)
    async def _prepare_views(self) -> None:
        """One view at a time (event loop, a worker task of its own)."""
        try:
            while self._to_prepare and not self._stopping and self.screen_stack:
                snapshot = self._to_prepare.popleft()
                view = snapshot.request.view
                if await prepare_view(self, view, _VIEWS[view], snapshot):
                    self.views_prepared.add(view)
        finally:
            self._preparing = False

    def delay_update(self, delay: float = 0.05) -> None:
        """Textual holds the screen for 50 ms when a view is switched to, to hide a
        half-built one; ours are built ahead (`tui.warmup`), so 5 ms is enough."""
        super().delay_update(min(delay, 0.005))

    def on_demo_finished(self, message: DemoFinished) -> None:
        """Say how the demo ended."""
        self._demo_done = True
        self._demo_error = message.error
        if self._stopping or not self.screen_stack:
            return
        if message.error:
            self.notify(message.error, title="Demo replay failed", severity="error", timeout=30)
        else:
            self.notify("Replay finished: the store stays open to explore.", title="Demo")
        self.refresh_bindings()
        self._poll_now()

    def _request_for(self, view: str) -> PollRequest:
        return PollRequest(
            view, self.customer_query, self._pages["decisions"], self._pages["handoffs"]
        )

    def _poll_now(self, view: str | None = None) -> None:
        self._request = self._request_for(view or self.current_mode)
        self._wake.set()

    # ---------------------------------------------------------------- views

    def show_view(self, view: str) -> None:
        """Switch to `view`, remembering where we came from (Esc goes back)."""
        if view not in _VIEWS:
            self.notify(f"No view called {view!r}", severity="warning")
            return
        if view != self.current_mode:
            self._history.append(self.current_mode)
            del self._history[:-20]
            # a view seen before shows at once what the store held then; the poll that
            # follows replaces it only if something was committed since
            self._poll_now(view)
            cached = self._collector.cached(self._request)
            if cached is not None:
                self.latest = cached
            self.switch_mode(view)
        self._poll_now()

    def action_show_view(self, view: str) -> None:
        """Keys 1–6."""
        self.show_view(view)

    def go_back(self) -> None:
        """Return to the previous view, if any."""
        if self._history:
            self.switch_mode(self._history.pop())
            self._poll_now()

    def open_customer(self, query: str) -> None:
        """Show the customer pane for an id, phone, email or name."""
        self.customer_query = query.strip() or None
        already = isinstance(self.screen, CustomerScreen)
        self.show_view("customer")
        if already and isinstance(self.screen, CustomerScreen):
            self.screen.sync_query()

    def open_decisions(self, where: DecisionFilter) -> None:
        """Show the Decisions view filtered by `where` (a drill-in from a count)."""
        self.show_view("decisions")
        if isinstance(self.screen, DecisionsScreen):
            self.screen.show_filter(where)

    def page_request(self, view: str) -> PageRequest:
        """The page of decisions `view` shows."""
        return self._pages[view]

    def set_page_request(self, view: str, request: PageRequest) -> None:
        """Ask for another page of decisions for `view`."""
        self._pages[view] = request
        self._poll_now()

    def clock(self) -> datetime | None:
        """The committed cut's clock, as the header shows it."""
        snapshot = self.latest
        if snapshot is None or not snapshot.status.clock:
            return None
        try:
            return parse_timestamp(snapshot.status.clock)
        except ValueError:
            return None

    def yank(self, text: str) -> None:
        """Copy `text` to the clipboard (the terminal's, through OSC 52) and say so."""
        self.copy_to_clipboard(text)
        self.notify(f"Copied {text}", timeout=2)

    def run_command(self, text: str) -> None:
        """Run one `:` command line."""
        parsed = parse_command(text)
        command = parsed.command
        if command is None:
            self.notify(
                f"Unknown command {parsed.text!r}. Commands: {command_list()}.",
                severity="warning",
                timeout=8,
            )
            return
        action, argument = command.action, parsed.argument
        if action == "view" and command.view == "customer" and argument:
            self.open_customer(argument)
        elif action == "view" and command.view in ("decisions", "handoffs") and argument:
            self.show_view(command.view)
            if isinstance(self.screen, DecisionsScreen):
                self.screen.apply_filter(argument)
        elif action == "view" and command.view is not None:
            self.show_view(command.view)
        elif action in ("optout", "optin"):
            if isinstance(self.screen, CustomerScreen):
                self.screen.ask_consent(argument, opt_in=action == "optin")
            else:
                self.notify("Open a customer first (5, or :customer QUERY).", severity="warning")
        elif action == "quit":
            self.exit()
        elif action == "help":
            self.action_help()
        elif action == "theme":
            self.action_toggle_theme()
        elif action == "refresh":
            self.action_refresh()
        elif action == "pause":
            self.action_demo_pause()
        elif action == "faster":
            self.action_demo_faster()
        elif action == "slower":
            self.action_demo_slower()

    def status_text(self, snapshot: Snapshot | None, view: str) -> Text:
        """The status line: view, decisions, run state, clock, line, store, progress."""
        text = Text.assemble((" omniconsole ", "bold reverse"), (f" {view.upper()} ", "bold"))
        parts: list[str] = []
        if self.demo is not None:
            if self._demo_error:
                parts.append("demo failed")
            elif not self._demo_done:
                parts.append(self.demo.label())
        if snapshot is None:
            parts.append("connecting…")
        elif not snapshot.status.ready:
            parts.append("waiting for store")
        else:
            parts += header_parts(snapshot.status, snapshot.progress, self.store_label)
        text.append("│ " + " │ ".join(parts))
        return text

    # ---------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Demo keys exist only in the demo."""
        if action.startswith("demo_"):
            return self.demo is not None and not self._demo_done
        return True

    def action_command_line(self) -> None:
        """`:` opens the command line."""
        if isinstance(self.screen, ViewScreen):
            self.screen.open_prompt("command")

    def action_filter(self) -> None:
        """`/` filters the current view."""
        if isinstance(self.screen, ViewScreen):
            self.screen.open_prompt("filter")

    def action_help(self) -> None:
        """`?` lists every key."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        """Switch between the dark and the light theme."""
        self.theme = LIGHT if self.theme == DARK else DARK
        for table in self.screen.query(DataTable):
            table._oc_signature = None  # type: ignore[attr-defined]
        if isinstance(self.screen, ViewScreen):
            self.screen.redraw()

    def action_refresh(self) -> None:
        """Poll the store now."""
        self._poll_now()

    def action_demo_pause(self) -> None:
        """Pause or resume the demo replay."""
        if self.demo is not None:
            self.demo.pacer.toggle()
            self._poll_now()

    def action_demo_faster(self) -> None:
        """Speed the demo up."""
        if self.demo is not None:
            self.demo.faster()
            self._poll_now()

    def action_demo_slower(self) -> None:
        """Slow the demo down."""
        if self.demo is not None:
            self.demo.slower()
            self._poll_now()


def run_console(db: Path | str, operator: OperatorActions | None = None) -> None:
    """Attach the console, read-only, to the store at `db` (it may not exist yet)."""
    ConsoleApp(db, operator=operator).run()


def run_demo(log: Path, db: Path | str, config_dir: Path | None = None) -> None:
    """Replay `log` into a fresh store at `db` inside the console, paced and controllable.
    A `postgresql://` store's ledger, report and rejects go to `out/demo.*`."""
    from omniconsole.engine.replay import ReplayOptions
    from omniconsole.tui.demo import DemoRunner

    if isinstance(db, str) and "://" in db:
        beside = Path("out/demo.db")
        beside.parent.mkdir(parents=True, exist_ok=True)
        options = ReplayOptions(
            log=Path(log), db=db, ledger=beside.with_suffix(".ledger.jsonl"),
            report=beside.with_suffix(".report.json"),
            rejects=beside.with_suffix(".rejects.jsonl"), config_dir=config_dir,
            checkpoint_seconds=0.2,
        )  # fmt: skip
        runner = DemoRunner(Path(log), beside, config_dir, options=options)
    else:
        runner = DemoRunner(Path(log), Path(db), config_dir)
    ConsoleApp(db, demo=runner).run()


def run_replay_console(options: ReplayOptions) -> None:
    """Run a replay described by `options` inside the console (`replay --tui`)."""
    from omniconsole.tui.demo import DemoRunner

    runner = DemoRunner(options.log, Path(options.db), options.config_dir, options=options)
    ConsoleApp(options.db, demo=runner).run()
