"""The chat core's Outbox for unit tests: it records what the domain decided to tell whom."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Emitted:
    event: str
    data: dict[str, Any]
    to: str | list[str]
    skip: str | list[str] | None


class RecordingOutbox:
    """Implements :class:`chatio.chat.ports.Outbox`; ``rooms`` is the Socket.IO membership it was told."""

    def __init__(self) -> None:
        self.emitted: list[Emitted] = []
        self.rooms: dict[str, set[str]] = {}

    async def enter(self, sid: str, room: str) -> None:
        self.rooms.setdefault(room, set()).add(sid)

    async def exit(self, sid: str, room: str) -> None:
        self.rooms.get(room, set()).discard(sid)

    async def emit(
        self, event: str, data: dict[str, Any], *, to: str | list[str], skip: str | list[str] | None = None
    ) -> None:
        self.emitted.append(Emitted(event, data, to, skip))

    def events(self, name: str) -> list[Emitted]:
        return [emitted for emitted in self.emitted if emitted.event == name]

    def clear(self) -> None:
        self.emitted.clear()
