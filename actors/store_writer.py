"""StoreWriterActor: the one writer of the SQLite store, batching through aiosqlite."""

from __future__ import annotations

import asyncio
from typing import Any

import pykka

from omniconsole.actors.messages import Checkpoint, Rows, StoreCall, Sync
from omniconsole.adapters.store.base import Store


class StoreWriterActor(pykka.ThreadingActor):
    """Receives rows from every actor and commits them at checkpoints.

    All hooks run on this actor's own thread, which drives an asyncio loop for aiosqlite.
    """

    def __init__(self, store: Store, *, fresh: bool) -> None:
        super().__init__()
        self.store = store.writer()
        self.fresh = fresh
        self.loop = asyncio.new_event_loop()

    def on_start(self) -> None:
        """Runs on the writer thread: open the store."""
        self.loop.run_until_complete(self.store.open(fresh=self.fresh))

    def on_stop(self) -> None:
        """Runs on the writer thread: close the store (uncommitted rows are rolled back)."""
        try:
            self.loop.run_until_complete(self.store.close())
        finally:  # a store that failed to open may fail to close: the loop closes anyway
            self.loop.close()

    def on_failure(self, *_: Any) -> None:
        """Runs on the writer thread after an uncaught error (also in `on_start`)."""
        if not self.loop.is_closed():
            self.on_stop()

    def on_receive(self, message: Any) -> Any:
        """Runs on the writer thread."""
        if isinstance(message, Rows):
            if message.records:
                self.loop.run_until_complete(self.store.add(message.records))
            return None
        if isinstance(message, Checkpoint):
            self.loop.run_until_complete(self.store.checkpoint(message.meta))
            return True
        if isinstance(message, StoreCall):
            return self.loop.run_until_complete(message.fn(self.store))
        if isinstance(message, Sync):
            return True
        raise TypeError(f"StoreWriterActor: unexpected message {message!r}")
