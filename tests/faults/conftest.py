"""The fault suite: poison inputs, provider outages, crashes under load.

Every module here is marked `faults` (`pytest -m "not faults"` leaves it out while
working locally); `make test` runs it.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: the fault suite (poison input, outages, kill -9); slower"
    )
