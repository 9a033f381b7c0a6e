"""Long work from the command line: stepping a replay forward with --until and --resume,
progress on a terminal and silence in a pipe, and `generate` writing one log however
it is asked to."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from omniconsole.cli_progress import ReplayBar
from omniconsole.engine.replay import ReplayError, ReplayOptions, run_replay

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample.jsonl"


def omniconsole(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "omniconsole", *map(str, args)],
        capture_output=True,
        timeout=300,
        cwd=REPO,
    )


def replay_args(out: Path, *extra: str) -> list[str | Path]:
    return ["replay", SAMPLE, "--db", out / "s.db", "--ledger", out / "l.jsonl",
            "--report", out / "r.json", "--partitions", "1", *extra]  # fmt: skip


# ---- --resume after --until (wrong item 8) ----


@pytest.mark.parametrize("partitions", [1, 2])
def test_a_replay_stopped_by_until_is_stepped_forward_exactly(
    tmp_path: Path, partitions: int
) -> None:
    """--until T1, then --resume --until T2, then --resume: the same ledger and report as
    one run, and each resume says where it continues from."""
    whole, stepped = tmp_path / "whole", tmp_path / "stepped"
    whole.mkdir()
    stepped.mkdir()

    def options(folder: Path, until: datetime | None, resume: bool = False) -> ReplayOptions:
        return ReplayOptions(
            log=SAMPLE, db=folder / "s.db", ledger=folder / "l.jsonl",
            report=folder / "r.json", until=until, resume=resume, partitions=partitions,
        )  # fmt: skip

    one = run_replay(options(whole, None))
    said: list[str] = []

    class Watcher(ReplayBar):
        def __init__(self) -> None:
            super().__init__(bar=False, stream=io.StringIO())

    first = run_replay(options(stepped, datetime(2026, 3, 5, 12, tzinfo=UTC)))
    assert first["events"]["read"] < one["events"]["read"]
    for until in (datetime(2026, 3, 9, 18, 30, tzinfo=UTC), None):
        watcher = Watcher()
        opts = options(stepped, until, resume=True)
        opts.watcher = watcher
        run_replay(opts)
        said.append(watcher.stream.getvalue())  # type: ignore[attr-defined]
    assert "where --until 2026-03-05T12:00:00Z stopped it" in said[0]
    assert "where --until 2026-03-09T18:30:00Z stopped it" in said[1]
    assert (stepped / "l.jsonl").read_bytes() == (whole / "l.jsonl").read_bytes()
    assert (stepped / "r.json").read_bytes() == (whole / "r.json").read_bytes()


def test_until_cannot_step_a_replay_back(tmp_path: Path) -> None:
    opts = ReplayOptions(
        log=SAMPLE,
        db=tmp_path / "s.db",
        ledger=tmp_path / "l.jsonl",
        report=tmp_path / "r.json",
        until=datetime(2026, 3, 9, tzinfo=UTC),
    )
    run_replay(opts)
    opts.resume, opts.until = True, datetime(2026, 3, 5, tzinfo=UTC)
    with pytest.raises(ReplayError, match="it can only go forward"):
        run_replay(opts)


def test_resume_says_where_it_continues_from_on_the_command_line(tmp_path: Path) -> None:
    first = omniconsole(*replay_args(tmp_path, "--until", "2026-03-06T00:00:00Z"))
    assert first.returncode == 0, first.stderr
    assert first.stderr == b""  # piped: no progress bar
    again = omniconsole(*replay_args(tmp_path, "--resume"))
    assert again.returncode == 0, again.stderr
    text = again.stderr.decode()
    assert text.startswith("omniconsole: resume: continuing from line ")
    assert "where --until 2026-03-06T00:00:00Z stopped it" in text
    quiet = omniconsole(*replay_args(tmp_path, "--resume", "--quiet"))
    assert quiet.returncode == 0 and quiet.stderr == b""


# ---- progress ----


class Terminal(io.StringIO):
    """A stream that says it is a terminal (as stderr is, interactively)."""

    def isatty(self) -> bool:
        return True


def test_a_replay_on_a_terminal_shows_lines_rate_decisions_and_time_left(tmp_path: Path) -> None:
    screen = Terminal()
    bar = ReplayBar(bar=True, stream=screen)
    run_replay(
        ReplayOptions(log=SAMPLE, db=tmp_path / "s.db", ledger=tmp_path / "l.jsonl",
                      report=tmp_path / "r.json", watcher=bar)
    )  # fmt: skip
    drawn = screen.getvalue()
    assert "replay" in drawn and "events/s" in drawn and "decisions" in drawn
    assert "line " in drawn


def test_a_piped_replay_prints_nothing_but_its_table(tmp_path: Path) -> None:
    done = omniconsole(*replay_args(tmp_path, "--table"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert done.stdout.startswith(b"events   read")


def test_journeys_without_a_goal_have_no_rate_in_the_table(tmp_path: Path) -> None:
    done = omniconsole(*replay_args(tmp_path, "--table"))
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.decode().splitlines()
            if line.split() and line.split()[0] in ("onboarding", "price_drop", "fraud_alert")}  # fmt: skip
    assert rows["price_drop"][1:] == ["—", "—"]
    assert rows["fraud_alert"][1:] == ["—", "—"]
    assert rows["onboarding"][2].endswith("%")
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    assert report["journeys"]["price_drop"]["conversion_rate"] == 0.0  # the report keeps SPEC §6


# ---- generate (wrong item 7) ----


def test_generate_writes_the_same_bytes_to_stdout_and_to_a_file(tmp_path: Path) -> None:
    args = ["generate", "--customers", "400", "--days", "14"]
    piped = omniconsole(*args)
    assert piped.returncode == 0, piped.stderr
    written = omniconsole(*args, "--out", tmp_path / "g.jsonl")
    assert written.returncode == 0, written.stderr
    assert piped.stdout == (tmp_path / "g.jsonl").read_bytes()
    assert piped.stderr == b""


def test_generate_to_an_unwritable_place_is_one_line_and_exit_2() -> None:
    done = omniconsole("generate", "--customers", "5", "--out", "/nope/x.jsonl")
    assert done.returncode == 2
    assert done.stderr.decode() == (
        "omniconsole: error: cannot write /nope/x.jsonl: folder /nope does not exist\n"
    )
