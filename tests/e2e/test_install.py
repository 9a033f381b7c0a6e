"""The package as a user installs it: a wheel in a fresh venv, away from the checkout.

Builds the wheel from a copy of this working tree, installs it with its dependencies
into a new virtual environment (pip's cache makes this tens of seconds), and runs the
installed `omniconsole` from a folder outside the checkout: the bundled sample replays
to the very bytes the checkout's engine writes, the demo opens in a real terminal and
quits on `q`, and `serve` starts with the shipped templates.

Marked `install` (about a minute): `pytest -m "not install"` leaves it out of a quick
local run; `make test` runs it.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fcntl import ioctl
from pathlib import Path

import orjson
import pytest
from peers import free_port

from omniconsole.engine.replay import ReplayOptions, run_replay

pytestmark = pytest.mark.install

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample.jsonl"
STEP_TIMEOUT = 300  # seconds for one pip or replay step: a cold pip cache downloads
# What a build must not copy from the working tree: environments, caches, outputs.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".peers", "out", "build", "dist", "*.egg-info", "__pycache__",
    ".*_cache", ".hypothesis", "*.db", "*.db-wal", "*.db-shm",
)  # fmt: skip
# CSI, OSC and other escape sequences Textual writes; what is left is the screen's text.
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)")


@dataclass(frozen=True)
class Installed:
    """A fresh venv holding the wheel, and a work folder outside the checkout."""

    venv: Path
    site_packages: Path
    work: Path

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "omniconsole"

    def env(self) -> dict[str, str]:
        """The environment of a user of that venv: nothing points into the checkout."""
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """Run the installed `omniconsole` in the work folder."""
        return subprocess.run(
            [str(self.command), *map(str, args)],
            cwd=self.work,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
        )


def checked(
    args: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    """Run a step that must succeed; its stdout."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=STEP_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel from a copy of the tree, install it (with dependencies) in a new venv."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    # symlinks=True: omniconsole/{actors,adapters,shipped_config,examples} are links the
    # build follows, as it does in a clone.
    shutil.copytree(REPO, source, symlinks=True, ignore=NOT_SOURCE)
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    checked([*pip, "wheel", "--no-deps", "--quiet", "--wheel-dir", wheels, source])
    [wheel] = wheels.glob("omniconsole-*.whl")
    venv = root / "venv"
    # No pip inside: this venv holds only what the wheel brings. The checkout's pip
    # installs into it (`--python`), which skips bootstrapping a pip per run.
    checked([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    checked([*pip, "--python", python, "install", "--quiet", wheel])
    purelib = checked([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    work = root / "work"
    work.mkdir()
    yield Installed(venv, Path(purelib.strip()), work)
    shutil.rmtree(root, ignore_errors=True)  # ~140 MB that pytest would keep for 3 runs


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Ledger, report and rejects the checkout's own engine writes for the sample."""
    out = tmp_path_factory.mktemp("expected")
    names = {"ledger": "ledger.jsonl", "report": "report.json", "rejects": "rejects.jsonl"}
    options = ReplayOptions(
        log=SAMPLE,
        db=out / "sample.db",
        ledger=out / names["ledger"],
        report=out / names["report"],
        rejects=out / names["rejects"],
    )
    run_replay(options)
    return {key: (out / name).read_bytes() for key, name in names.items()}


def test_the_wheel_installs_only_the_omniconsole_package(installed: Installed) -> None:
    site = installed.site_packages
    assert (site / "omniconsole" / "__init__.py").is_file()
    for name in ("actors", "adapters"):
        assert not (site / name).exists(), f"the wheel claims the top-level name {name!r}"
        package = site / "omniconsole" / name
        assert package.is_dir() and not package.is_symlink()
        assert (package / "__init__.py").is_file()
    [dist_info] = site.glob("omniconsole-*.dist-info")
    assert (dist_info / "top_level.txt").read_text().split() == ["omniconsole"]
    shipped = site / "omniconsole" / "shipped_config"
    assert (shipped / "policy.toml").is_file()
    journeys = sorted(p.stem for p in (shipped / "journeys").glob("*.toml"))
    templates = sorted(p.stem for p in (shipped / "templates").glob("*.toml"))
    assert journeys == templates and len(journeys) == 5
    imported = checked(
        [
            installed.venv / "bin" / "python",
            "-c",
            "import omniconsole; print(omniconsole.__file__)",
        ],
        cwd=installed.work,
        env=installed.env(),
    )
    assert Path(imported.strip()).is_relative_to(site)  # not the checkout


def test_the_installed_command_replays_the_bundled_sample_to_the_checkouts_bytes(
    installed: Installed, expected: dict[str, bytes]
) -> None:
    sample = installed.site_packages / "omniconsole" / "examples" / "sample.jsonl"
    assert sample.read_bytes() == SAMPLE.read_bytes()
    out = installed.work / "replay"
    out.mkdir()
    # No --config: the shipped config must be found inside the installed package.
    # No --partitions: one engine process per CPU, spawned from the installed package.
    done = installed.run(
        "replay", sample, "--db", out / "sample.db", "--ledger", out / "ledger.jsonl",
        "--report", out / "report.json", "--rejects", out / "rejects.jsonl",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "ledger.jsonl").read_bytes() == expected["ledger"]
    assert (out / "report.json").read_bytes() == expected["report"]
    assert (out / "rejects.jsonl").read_bytes() == expected["rejects"]


class Terminal:
    """A pseudo-terminal running one command; reads what it draws, types keys into it."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], size: tuple[int, int]):
        self.master, slave = pty.openpty()
        columns, rows = size
        ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {**env, "TERM": "xterm-256color"}
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True
        )
        os.close(slave)
        self.raw = b""

    @property
    def text(self) -> str:
        """Everything drawn so far, escape sequences removed."""
        return ANSI.sub(b"", self.raw).decode(errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        """Read output until `condition()` holds (checked after every read)."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{self.text[-3000:]}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the command has exited and closed the terminal
                    chunk = b""
                if not chunk and not condition():
                    raise AssertionError(f"the command exited before {what}:\n{self.text[-3000:]}")
                self.raw += chunk

    def press(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> int:
        """Wait for the command to end (killing it after a while); its exit status."""
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise
        finally:
            os.close(self.master)


@pytest.fixture
def terminal() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for term in opened:
        if term.process.poll() is None:
            os.killpg(term.process.pid, signal.SIGKILL)
            term.process.wait()


def test_the_installed_demo_opens_on_the_journeys_and_quits_on_q(
    installed: Installed, expected: dict[str, bytes], terminal: list[Terminal]
) -> None:
    term = Terminal([str(installed.command), "demo"], installed.work, installed.env(), (100, 30))
    terminal.append(term)
    journeys = ("onboarding", "order_confirmation", "fraud_alert", "price_drop")
    term.wait_for(lambda: all(name in term.text for name in journeys), "the journeys screen")
    # Full speed, then the demo's ledger (beside its default store, out/demo.db) must
    # become the sample's ledger: the bundled sample and shipped config, replayed.
    ledger = installed.work / "out" / "demo.ledger.jsonl"
    term.press("+" * 6)

    def ledger_complete() -> bool:
        return ledger.is_file() and ledger.read_bytes() == expected["ledger"]

    term.wait_for(ledger_complete, "the demo's ledger", timeout=120)
    term.press("q")
    assert term.close() == 0, term.text[-3000:]


def test_the_installed_service_starts_with_the_shipped_templates(
    installed: Installed, terminal: list[Terminal]
) -> None:
    port = free_port()
    env = {**installed.env(), "OMNICONSOLE_WRITE_KEY": "wk-install-test"}
    args = [str(installed.command), "serve", "--db", "live.db", "--port", str(port)]
    term = Terminal(args, installed.work, env, (100, 30))
    terminal.append(term)
    # serve renders every template for every channel before it listens: a missing file stops it
    term.wait_for(lambda: "listening on" in term.text, "the service to listen")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        health = orjson.loads(response.read())
    assert health["engine"] == "running" and health["channels"]["in_app"] == "up"
    term.process.send_signal(signal.SIGINT)
    assert term.close() == 0, term.text[-3000:]
