"""The layers hold at run time, not only in the import graph (harlequin's recipe).

import-linter checks the imports it can see; this imports every headless module in a
fresh interpreter and looks at what got loaded. The engine, the actors and the
adapters run without Textual (a server has no console); the domain runs without
actors, storage or any channel SDK.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import pytest

#: what no headless module may load
NO_CONSOLE = ("textual",)
#: what the pure domain may not load either
NO_INFRASTRUCTURE = (
    *NO_CONSOLE, "pykka", "aiosqlite", "aiosmtplib", "twilio", "pyfcm", "aiohttp", "sqlite3",
)  # fmt: skip

# Imports the modules in order in this interpreter; after each, reports the forbidden
# packages now loaded. It stops at the first module that loads one: every module after
# it would be blamed too.
PROBE = """
import importlib, json, sys
forbidden = sys.argv[1].split(",")
for name in sys.argv[2:]:
    importlib.import_module(name)
    loaded = [f for f in forbidden if f in sys.modules]
    if loaded:
        print(json.dumps({name: loaded}))
        break
else:
    print("{}")
"""


def modules_under(package: str) -> list[str]:
    """The package and every module below it."""
    root = importlib.import_module(package)
    found = pkgutil.walk_packages(root.__path__, prefix=f"{package}.")
    return [package, *sorted(info.name for info in found)]


def loaded_by(modules: list[str], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """{first module whose import loaded something forbidden: what it loaded}, or {}."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(forbidden), *modules],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("omniconsole.domain", NO_INFRASTRUCTURE),
        ("omniconsole.actors", NO_CONSOLE),
        ("omniconsole.adapters", NO_CONSOLE),
        ("omniconsole.engine", NO_CONSOLE),
    ],
)
def test_no_headless_module_loads_what_its_layer_must_not_know(
    package: str, forbidden: tuple[str, ...]
) -> None:
    modules = modules_under(package)
    assert len(modules) > 3, f"found only {modules}"
    assert loaded_by(modules, forbidden) == {}


def test_the_probe_names_the_module_that_loads_textual() -> None:
    # the console's app among headless modules: it is caught, and nothing after it blamed
    modules = ["omniconsole.domain.events", "omniconsole.tui.app", "omniconsole.domain.flow"]
    assert loaded_by(modules, NO_CONSOLE) == {"omniconsole.tui.app": ["textual"]}


def test_every_layer_is_found_where_it_is_installed() -> None:
    # actors and adapters are installed through links; walking them must find the modules
    assert "omniconsole.actors.runtime" in modules_under("omniconsole.actors")
    assert "omniconsole.adapters.store.sqlite" in modules_under("omniconsole.adapters")
    assert "omniconsole.engine.partition_worker" in modules_under("omniconsole.engine")
