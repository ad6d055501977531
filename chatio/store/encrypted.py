"""A :class:`~chatio.store.Store` that keeps message text encrypted at rest (``CHATIO_MESSAGE_KEY``).

It wraps the configured store: ``append`` seals the text before the inner store sees it, and every
message read back is opened again, so the rest of chatio only ever handles plain text. Users and rooms
pass through untouched.

What it costs (README, "Security"):

* **Server-side search.** The database holds ciphertext, so it cannot find words in it: ``search``
  finds only messages stored before encryption was turned on (results are re-checked against the
  decrypted text, so ciphertext never matches by accident).
* **Space and CPU.** About 4/3 of the text plus 45 bytes per message; AES-GCM costs microseconds.
* **Keys are now data.** Losing every key that sealed a message loses that message. A message that does
  not decrypt (unknown key id, damaged, moved to another room) is returned with :data:`UNREADABLE` as its
  text and logged, rather than failing the whole page it is on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Final

from chatio.store import Counts, Draft, Message, Page, ReadMark, Room, Store, User, ngrams
from chatio.store.cipher import CipherError, MessageCipher

log = logging.getLogger(__name__)

UNREADABLE: Final = "[this message cannot be decrypted]"
#: How many more candidates ``search`` asks the inner store for, to make up for filtered ones.
_SEARCH_OVERFETCH: Final = 4


def _context(room: str, user_id: str) -> bytes:
    return f"{room}\x00{user_id}".encode()


class EncryptingStore:
    """``inner`` with message text sealed by ``cipher``; see the module docstring."""

    def __init__(self, inner: Store, cipher: MessageCipher) -> None:
        self.inner = inner
        self._cipher = cipher

    def _open_text(self, text: str, room: str, user_id: str, message_id: str) -> str:
        try:
            return self._cipher.open(text, _context(room, user_id))
        except CipherError as exc:
            log.error("message %s in room %r: %s", message_id, room, exc)
            return UNREADABLE

    def _open(self, message: Message) -> Message:
        # A tombstone's text is empty: nothing was sealed.
        text = message.text and self._open_text(message.text, message.room, message.user_id, message.id)
        quote = message.reply_to
        if quote is not None and quote.excerpt:
            opened = self._open_text(quote.excerpt, message.room, quote.user_id, quote.id)
            quote = dataclasses.replace(quote, excerpt=opened)
        if text is message.text and quote is message.reply_to:
            return message
        return dataclasses.replace(message, text=text, reply_to=quote)

    def _opened(self, message: Message | None) -> Message | None:
        return None if message is None else self._open(message)

    async def append(self, draft: Draft) -> Message:
        sealed = self._cipher.seal(draft.text, _context(draft.room, draft.user_id))
        quote = draft.reply_to
        if quote is not None and quote.excerpt:
            excerpt = self._cipher.seal(quote.excerpt, _context(draft.room, quote.user_id))
            quote = dataclasses.replace(quote, excerpt=excerpt)
        return self._open(await self.inner.append(dataclasses.replace(draft, text=sealed, reply_to=quote)))

    async def get_message(self, room: str, message_id: str) -> Message | None:
        return self._opened(await self.inner.get_message(room, message_id))

    async def edit(self, room: str, message_id: str, text: str) -> Message | None:
        current = await self.inner.get_message(room, message_id)
        if current is None:
            return None
        sealed = self._cipher.seal(text, _context(room, current.user_id))
        return self._opened(await self.inner.edit(room, message_id, sealed))

    async def delete(self, room: str, message_id: str) -> Message | None:
        return self._opened(await self.inner.delete(room, message_id))

    async def react(self, room: str, message_id: str, emoji: str, user: str, *, add: bool) -> Message | None:
        return self._opened(await self.inner.react(room, message_id, emoji, user, add=add))

    async def changes(self, room: str, *, after_change: int, upto_seq: int, limit: int) -> Page:
        page = await self.inner.changes(room, after_change=after_change, upto_seq=upto_seq, limit=limit)
        return Page([self._open(message) for message in page.messages], page.has_more)

    async def last_change(self, room: str) -> int:
        return await self.inner.last_change(room)

    async def page(
        self, room: str, *, before: int | None = None, after: int | None = None, limit: int
    ) -> Page:
        page = await self.inner.page(room, before=before, after=after, limit=limit)
        return Page([self._open(message) for message in page.messages], page.has_more)

    async def search(
        self, query: str, *, rooms: Sequence[str] | None, limit: int, skip: int = 0
    ) -> list[Message]:
        plan = ngrams.plan(query)
        if plan.empty or limit <= 0:
            return []
        found = await self.inner.search(query, rooms=rooms, limit=(skip + limit) * _SEARCH_OVERFETCH)
        opened = [self._open(message) for message in found]
        matching = [m for m in opened if ngrams.matches(plan, m.text)]
        return matching[skip : skip + limit]

    # --- everything else passes through -----------------------------------------------------------

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self.inner.ping()

    async def create_user(
        self, username: str, display_name: str, email: str | None = None, *, guest: bool = False
    ) -> User:
        return await self.inner.create_user(username, display_name, email, guest=guest)

    async def get_user(self, user_id: str) -> User | None:
        return await self.inner.get_user(user_id)

    async def find_user(self, username: str) -> User | None:
        return await self.inner.find_user(username)

    async def find_users(self, usernames: Sequence[str]) -> list[User]:
        return await self.inner.find_users(usernames)

    async def users(self, *, prefix: str = "", after: str | None = None, limit: int) -> list[User]:
        return await self.inner.users(prefix=prefix, after=after, limit=limit)

    async def create_room(self, room_id: str, name: str, *, public: bool, owner: str | None) -> Room:
        return await self.inner.create_room(room_id, name, public=public, owner=owner)

    async def get_room(self, room_id: str) -> Room | None:
        return await self.inner.get_room(room_id)

    async def public_rooms(self, *, limit: int, after: str | None = None) -> list[Room]:
        return await self.inner.public_rooms(limit=limit, after=after)

    async def counts(self) -> Counts:
        return await self.inner.counts()

    async def set_receipts(self, room_id: str, receipts: bool) -> Room | None:
        return await self.inner.set_receipts(room_id, receipts)

    async def set_retention(self, room_id: str, days: int | None) -> Room | None:
        return await self.inner.set_retention(room_id, days)

    async def room_ids(self, *, after: str | None, limit: int) -> list[str]:
        return await self.inner.room_ids(after=after, limit=limit)

    async def expire(self, room: str, before_ts: int) -> int:
        return await self.inner.expire(room, before_ts)

    async def mark_read(self, room: str, user_id: str, user: str, seq: int) -> int:
        return await self.inner.mark_read(room, user_id, user, seq)

    async def last_read(self, room: str, user_id: str) -> int | None:
        return await self.inner.last_read(room, user_id)

    async def read_marks(self, room: str, *, limit: int) -> list[ReadMark]:
        return await self.inner.read_marks(room, limit=limit)

    async def read_rooms(self, user_id: str, *, limit: int) -> list[ReadMark]:
        return await self.inner.read_rooms(user_id, limit=limit)

    async def unread(self, room: str, user_id: str, after_seq: int, *, cap: int) -> int:
        return await self.inner.unread(room, user_id, after_seq, cap=cap)
