"""Display names: what messages, room events, member lists and presence show beside a username.

A user's display name is stored with their account (``POST /api/chat/users``; a guest's is their name).
This process learns the names of the users who connect to it, and looks up others in the store, a batch
at a time, when a member list needs them; what it learned it keeps (a display name does not change), up
to :data:`KEEP` names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from chatio.accounts.identity import Identity
from chatio.store import Store, Unavailable

log = logging.getLogger(__name__)

#: Names kept; past this many the whole table is forgotten and learned again.
KEEP: Final = 50_000


class DisplayNames:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[str, str] = {}

    def of(self, username: str) -> str:
        """The display name of a user this process knows, else the username."""
        return self._known.get(username, username)

    async def learn(self, identity: Identity) -> str:
        """Look up (once) the display name of a user who connects; the username when the store fails."""
        known = self._known.get(identity.username)
        if known is not None:
            return known
        try:
            user = await self._store.get_user(identity.user_id)
        except Unavailable:
            log.warning("display name of %s: the store is unavailable", identity.username)
            return identity.username
        return self._keep(identity.username, identity.username if user is None else user.display_name)

    async def many(self, usernames: Iterable[str]) -> dict[str, str]:
        """The display names of ``usernames`` (one store query for those not known yet)."""
        names = list(usernames)
        missing = [name for name in names if name not in self._known]
        if missing:
            try:
                for user in await self._store.find_users(missing):
                    self._keep(user.username, user.display_name)
            except Unavailable:
                log.warning("display names of %d users: the store is unavailable", len(missing))
        return {name: self.of(name) for name in names}

    def _keep(self, username: str, display_name: str) -> str:
        if len(self._known) >= KEEP:
            self._known.clear()
        self._known[username] = display_name
        return display_name
