"""The operator console (Textual): live journeys, handoffs, caps, channels, customer pane.

Entry points for the CLI: `run_console(db)` attaches read-only to a store;
`run_demo(log, db, config_dir)` replays a log inside the console;
`run_replay_console(options)` runs any replay inside it (`replay --tui`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omniconsole.domain.operator import OperatorActions
    from omniconsole.engine.replay import ReplayOptions

__all__ = ["run_console", "run_demo", "run_replay_console"]


def run_console(db: Path | str, operator: OperatorActions | None = None) -> None:
    """Attach the console, read-only, to the store at `db` (a SQLite file or a
    `postgresql://` URL; `operator`: the running service's agent actions)."""
    from omniconsole.tui.app import run_console as run

    run(db, operator)


def run_demo(log: Path, db: Path | str, config_dir: Path | None = None) -> None:
    """Replay `log` into a fresh store at `db` inside the console."""
    from omniconsole.tui.app import run_demo as run

    run(log, db, config_dir)


def run_replay_console(options: ReplayOptions) -> None:
    """Run a replay described by `options` inside the console."""
    from omniconsole.tui.app import run_replay_console as run

    run(options)
