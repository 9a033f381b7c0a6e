"""The live outbox's own connection, on a thread of its own (the delivery runner's).

Every read and write of the runner goes through here, so the SQLite connection is used
from one thread; the outcome updates that wait together are committed in one
transaction (group commit), so a burst of answers costs one commit, not one each.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from omniconsole.adapters.store.base import OutboxQueue
from omniconsole.domain.records import OutboxUpdate

__all__ = ["OutboxThread"]

T = TypeVar("T")


class OutboxThread:
    """The outbox connection on a thread of its own. Updates that wait together are
    committed in one transaction (group commit); reads run in order after them.
    `call` and `commit` may be called from any thread."""

    def __init__(self, open_outbox: Callable[[], OutboxQueue]) -> None:
        self._open = open_outbox
        self._jobs: queue.Queue[tuple[Callable[[OutboxQueue], Any], Future[Any]] | None]
        self._jobs = queue.Queue()
        self._updates: list[tuple[OutboxUpdate, Future[None]]] = []
        self._lock = threading.Lock()
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)

    def start(self) -> None:
        """Open the connection on the thread (re-raises a failure to open)."""
        self._thread.start()
        self._ready.result()  # re-raises a failure to open

    def call(self, fn: Callable[[OutboxQueue], T]) -> Future[T]:
        """Run `fn(outbox)` on the outbox thread."""
        done: Future[T] = Future()
        self._jobs.put((fn, done))
        return done

    def commit(self, update: OutboxUpdate) -> Future[None]:
        """Commit `update` (with whatever other updates are waiting)."""
        done: Future[None] = Future()
        with self._lock:
            self._updates.append((update, done))
        self._jobs.put((_flush, done))
        return done

    def close(self) -> None:
        """Commit what waits, close the connection, end the thread (if it ran)."""
        if not self._thread.is_alive():
            return
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        try:
            outbox = self._open()
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            while (job := self._jobs.get()) is not None:
                fn, done = job
                if fn is _flush:
                    self._flush(outbox)
                    continue
                if not done.set_running_or_notify_cancel():
                    continue  # its asker was cancelled (a stop): nobody reads the answer
                try:
                    done.set_result(fn(outbox))
                except BaseException as exc:
                    done.set_exception(exc)
        finally:
            self._flush(outbox)
            outbox.close()

    def _flush(self, outbox: OutboxQueue) -> None:
        with self._lock:
            batch, self._updates = self._updates, []
        if not batch:
            return
        # Committed even when the asker was cancelled meanwhile (a stop): the provider
        # answered, and the next start settles what is committed.
        asked = [done for _, done in batch if done.set_running_or_notify_cancel()]
        try:
            outbox.update([u for u, _ in batch])
        except BaseException as exc:
            for done in asked:
                done.set_exception(exc)
            return
        for done in asked:
            done.set_result(None)


def _flush(_: OutboxQueue) -> None:
    """Marker job: commit the waiting updates (see `OutboxThread.commit`)."""
