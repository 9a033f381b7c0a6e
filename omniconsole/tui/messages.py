"""Messages the console's workers post to the app (posted from threads, handled on the loop)."""

from __future__ import annotations

from textual.message import Message

from omniconsole.tui.snapshot import Snapshot

__all__ = ["DemoFinished", "StoreUpdated", "ViewPrefetched"]


class StoreUpdated(Message):
    """A fresh snapshot of the store. Coalesced: only the latest waiting one is kept."""

    def __init__(self, snapshot: Snapshot) -> None:
        """Wrap `snapshot` (built on the poll thread)."""
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        """A newer snapshot makes an older, still queued one pointless."""
        return isinstance(message, StoreUpdated)


class DemoFinished(Message):
    """The demo replay ended (`error` is None when it finished normally)."""

    def __init__(self, error: str | None) -> None:
        """`error`: what went wrong, or None."""
        super().__init__()
        self.error = error


class ViewPrefetched(Message):
    """Another view's data, fetched once while the operator reads the first screen, so
    its screen can be made ready before its key is pressed. Never coalesced."""

    def __init__(self, snapshot: Snapshot) -> None:
        """Wrap `snapshot` (built on the poll thread, for `snapshot.request.view`)."""
        super().__init__()
        self.snapshot = snapshot
