"""Reading a room's history, for REST and sockets alike: pages of messages, and pages of the messages
changed since a change number (docs/protocol.md, ``history`` and ``GET .../messages``)."""

from __future__ import annotations

from chatio import errors
from chatio.chat import deadline
from chatio.config import Settings
from chatio.errors import ChatError
from chatio.store import Page, Store


class History:
    """Every coroutine raises :class:`ChatError`: ``invalid_payload`` on ``limit`` past the configured
    maximum, ``unavailable`` when the store does not answer in time."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._deadline = settings.store_timeout_seconds + 1.0

    async def page(self, room_id: str, *, before: int | None, after: int | None, limit: int | None) -> Page:
        """A history page, ``limit`` messages (the configured page size when None)."""
        size = self._page_size(limit)
        page = self._store.page(room_id, before=before, after=after, limit=size)
        return await deadline.within(self._deadline, page)

    async def changes(
        self, room_id: str, *, since_change: int, upto_seq: int | None, limit: int | None
    ) -> tuple[Page, int]:
        """Messages (up to ``upto_seq``) changed after ``since_change``, and the room's latest change."""
        size = self._page_size(limit)
        change = await deadline.within(self._deadline, self._store.last_change(room_id))
        upto = upto_seq if upto_seq is not None else 2**62
        page = self._store.changes(room_id, after_change=since_change, upto_seq=upto, limit=size)
        return await deadline.within(self._deadline, page), change

    def _page_size(self, limit: int | None) -> int:
        if limit is not None and limit > self._settings.history_max_page:
            raise ChatError(
                errors.INVALID_PAYLOAD,
                f"limit: Must be at most {self._settings.history_max_page}.",
                field="limit",
            )
        return limit or self._settings.history_page_size
