"""A replay whose partitions are Ray actors on a cluster, over PostgreSQL, is the same
replay: the same ledger bytes as in-process on SQLite and as local partitions — also
when a node dies mid-run, and when the coordinator stops and is resumed.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from store_logs import SAMPLE, options, replay, same_outputs, write_tricky_log

from omniconsole.adapters.store import store_at
from omniconsole.cli import main
from omniconsole.domain.clock import Pacer
from omniconsole.domain.config import shipped_config_dir
from omniconsole.engine.cluster import RayEngine
from omniconsole.engine.cluster.connect import alive_nodes
from omniconsole.engine.replay import run_replay

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]


@pytest.fixture(scope="module")
def tricky_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tricky_log(tmp_path_factory.mktemp("log") / "events.jsonl")


@pytest.fixture(scope="module")
def on_sqlite(tricky_log: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tricky log replayed in-process on SQLite: the reference outputs."""
    out = tmp_path_factory.mktemp("sqlite")
    replay(tricky_log, out)
    return out


def epochs(url: str) -> dict[str, int]:
    """Schema -> how many writers have opened it (a recreated partition opens it again)."""
    found = {}
    with psycopg.connect(url) as conn:
        for (schema,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'omniconsole%' ORDER BY 1"
        ):
            (epoch,) = conn.execute(f'SELECT epoch FROM "{schema}".fence').fetchone() or (0,)
            found[schema] = int(epoch)
    return found


@pytest.mark.parametrize("partitions", [3, 6])
def test_partitions_are_spread_over_the_clusters_nodes(
    three_nodes: Any, pg_url: str, partitions: int
) -> None:
    engine = RayEngine(shipped_config_dir(), store_at(pg_url), partitions, resume=False,
                       address=three_nodes.address)  # fmt: skip
    try:
        hosts = list(engine.placement().values())
    finally:
        engine.stop()
    nodes = alive_nodes()
    assert len(nodes) == 3
    assert sorted(hosts) == sorted(nodes * (partitions // 3))


def test_the_same_log_in_process_on_local_partitions_and_on_a_ray_cluster_writes_the_same_ledger(
    three_nodes: Any, pg_url: str, tricky_log: Path, on_sqlite: Path, tmp_path: Path
) -> None:
    replay(tricky_log, tmp_path / "local", partitions=2)
    report = replay(tricky_log, tmp_path / "ray", pg_url, 3, ray=three_nodes.address)
    assert same_outputs(on_sqlite, tmp_path / "local") == []
    assert same_outputs(on_sqlite, tmp_path / "ray") == []
    assert report["events"]["rejected"] >= 2
    assert set(epochs(pg_url)) == {"omniconsole", *(f"omniconsole_p{k}" for k in range(3))}


def test_channel_rules_on_a_ray_cluster_write_the_same_ledger_as_in_process(
    three_nodes: Any, pg_url: str, tmp_path: Path
) -> None:
    """The example config (affinity, switches, best hours, digests, topics): each
    partition's actor decides with the rules its config carries across the cluster."""
    example = Path(__file__).resolve().parents[2] / "config" / "examples" / "channels"
    replay(SAMPLE, tmp_path / "local", config_dir=example)
    replay(SAMPLE, tmp_path / "ray", pg_url, 3, ray=three_nodes.address, config_dir=example)
    assert same_outputs(tmp_path / "local", tmp_path / "ray") == []
    assert b'"outcome":"digested"' in (tmp_path / "ray" / "ledger.jsonl").read_bytes()


class LoseNodeAt(Pacer):
    """Lets the replay run at full speed, and kills a worker node (SIGKILL: no goodbye)
    just before the coordinator hands over batch `batch`."""

    def __init__(self, cluster: Any, batch: int) -> None:
        super().__init__(None)
        self.cluster, self.batch, self.removed = cluster, batch, ""

    def wait_for(self, sim: datetime) -> bool:
        self.batch -= 1
        if self.batch == 0:
            node = sorted(self.cluster.worker_nodes, key=lambda n: n.node_id)[-1]
            self.removed = node.node_id
            self.cluster.remove_node(node, allow_graceful=False)
        return True


def test_a_node_lost_mid_replay_costs_nothing_the_ledger_is_the_same(
    three_nodes: Any, pg_url: str, tricky_log: Path, on_sqlite: Path, tmp_path: Path
) -> None:
    """The lost node's partition restarts on a live node from its last checkpoint in
    PostgreSQL, is sent again what that checkpoint does not hold, and the run ends with
    the ledger of an uninterrupted run."""
    lose = LoseNodeAt(three_nodes, batch=150)
    run_replay(options(tricky_log, tmp_path, pg_url, 3, ray=three_nodes.address,
                       checkpoint_events=1000), pacer=lose)  # fmt: skip
    assert lose.removed and lose.removed not in alive_nodes()
    assert same_outputs(on_sqlite, tmp_path) == []
    opened = epochs(pg_url)
    recreated = [s for s, n in opened.items() if s != "omniconsole" and n > 1]
    assert len(recreated) == 1, opened  # exactly the lost node's partition came back


class StopAfter(Pacer):
    """A console's pacer whose operator quits after `steps` steps of simulated time."""

    def __init__(self, steps: int) -> None:
        super().__init__(None)
        self.steps = steps

    def wait_for(self, sim: datetime) -> bool:
        self.steps -= 1
        return self.steps > 0


def test_a_replay_stopped_on_the_cluster_resumes_to_the_same_ledger(
    three_nodes: Any, pg_url: str, tmp_path: Path
) -> None:
    whole = replay(SAMPLE, tmp_path / "whole")
    stopped = options(SAMPLE, tmp_path / "stopped", pg_url, 3, ray=three_nodes.address)
    run_replay(stopped, pacer=StopAfter(300))
    with contextlib.closing(store_at(pg_url).reader()) as reader:
        assert reader.meta()["status"] == "stopped"
    assert run_replay(replace(stopped, partitions=0, resume=True)) == whole
    assert same_outputs(tmp_path / "whole", tmp_path / "stopped") == []


def test_the_command_line_runs_a_replay_on_the_cluster_one_partition_per_node(
    three_nodes: Any, pg_url: str, tmp_path: Path
) -> None:
    replay(SAMPLE, tmp_path / "whole")
    out = tmp_path / "cli"
    out.mkdir()
    code = main(["replay", str(SAMPLE), "--db", pg_url, "--ray", three_nodes.address,
                 "--ledger", str(out / "ledger.jsonl"), "--report", str(out / "report.json"),
                 "--rejects", str(out / "rejects.jsonl")])  # fmt: skip
    assert code == 0
    assert same_outputs(tmp_path / "whole", out) == []
    assert len(epochs(pg_url)) == 1 + 3  # the main store and one part per node


def test_ray_auto_starts_ray_on_this_machine_for_the_run_and_stops_it(
    pg_url: str, tmp_path: Path
) -> None:
    """`--ray auto` in a fresh process: a local Ray instance just for the run."""
    import subprocess
    import sys

    replay(SAMPLE, tmp_path / "whole")
    out = tmp_path / "auto"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "omniconsole", "replay", str(SAMPLE), "--db", pg_url,
         "--ray", "auto", "--partitions", "2", "--ledger", str(out / "ledger.jsonl"),
         "--report", str(out / "report.json"), "--rejects", str(out / "rejects.jsonl")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert same_outputs(tmp_path / "whole", out) == []
    assert "Traceback" not in done.stderr


def test_control_groups_and_variants_on_a_ray_cluster_hold_out_whom_they_hold_out_in_process(
    three_nodes: Any, pg_url: str, tmp_path: Path
) -> None:
    example = shipped_config_dir() / "examples" / "holdouts"
    local = replay(SAMPLE, tmp_path / "local", config_dir=example)
    report = replay(SAMPLE, tmp_path / "ray", pg_url, 3, ray=three_nodes.address,
                    config_dir=example)  # fmt: skip
    assert same_outputs(tmp_path / "local", tmp_path / "ray") == []
    assert b'"held_out"' in (tmp_path / "ray" / "ledger.jsonl").read_bytes()
    assert report["outcomes"] == local["outcomes"]
