"""Every actor test starts its actors in fixtures or in the test; none outlives it."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest


@pytest.fixture(autouse=True)
def stop_all_actors() -> Iterator[None]:
    """pykka's recipe: whatever a test started is stopped after it, pass or fail."""
    yield
    pykka.ActorRegistry.stop_all()
