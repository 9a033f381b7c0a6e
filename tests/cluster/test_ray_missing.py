"""Ray is an optional extra: without it everything else works, and `--ray` says in one
line what to install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from omniconsole.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.jsonl"


def test_without_ray_installed_the_ray_option_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    code = main(["replay", str(SAMPLE), "--ray", "auto", "--db", str(tmp_path / "s.db"),
                 "--ledger", str(tmp_path / "l"), "--report", str(tmp_path / "r")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'omniconsole[cluster]'" in err
    assert main(["replay", str(SAMPLE), "--db", str(tmp_path / "s.db"), "--partitions", "1",
                 "--ledger", str(tmp_path / "l"), "--report", str(tmp_path / "r")]) == 0  # fmt: skip
