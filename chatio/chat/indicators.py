"""Typing indicators: who is typing in which room, told to the room as ``typing`` events. A user's typing
starts and stops on command, stops when they send or leave, and expires by itself after
``CHATIO_TYPING_TIMEOUT_SECONDS`` without renewal."""

from __future__ import annotations

from collections.abc import Callable

from chatio.chat.names import DisplayNames
from chatio.chat.ports import Outbox
from chatio.presence import TypingTracker


class TypingIndicators:
    """``local_sids(room, user)``: the user's sockets in the room on this process, which an expiry skips
    (they know their own state)."""

    def __init__(
        self,
        timeout_seconds: float,
        outbox: Outbox,
        names: DisplayNames,
        local_sids: Callable[[str, str], list[str]],
    ) -> None:
        self._outbox = outbox
        self._names = names
        self._local_sids = local_sids
        self._tracker = TypingTracker(timeout_seconds, self._expired)

    async def set(self, room_id: str, user: str, typing: bool, *, skip: str) -> None:
        """Start (or renew) or stop the user's typing; the room hears of a change, ``skip`` aside."""
        tracker = self._tracker
        changed = tracker.start(room_id, user) if typing else tracker.stop(room_id, user)
        if changed:
            await self._changed(room_id, user, typing, skip=skip)

    async def stop(self, room_id: str, user: str, *, skip: str) -> None:
        """The user sent a message or left: the room hears that they stopped, if they were typing."""
        if self._tracker.stop(room_id, user):
            await self._changed(room_id, user, False, skip=skip)

    async def _expired(self, room_id: str, user: str) -> None:
        await self._changed(room_id, user, False, skip=self._local_sids(room_id, user))

    async def _changed(self, room_id: str, user: str, typing: bool, skip: str | list[str]) -> None:
        payload = {"room": room_id, "user": user, "displayName": self._names.of(user), "typing": typing}
        await self._outbox.emit("typing", payload, to=room_id, skip=skip)

    def close(self) -> None:
        self._tracker.close()
