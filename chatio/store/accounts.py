"""The ``AccountStore`` protocol: credentials, administrators, deleted users and refresh tokens.

The user record itself (username, display name) stays in the :class:`~chatio.store.Store`; this store
keeps what only authentication needs. Two implementations pass one contract suite
(``tests/store/test_accounts_contract.py``): :class:`~chatio.store.accounts_memory.MemoryAccountStore` and
:class:`~chatio.store.accounts_mongo.MongoAccountStore`.

Refresh tokens rotate: each is redeemed once (:meth:`AccountStore.redeem_refresh_token` marks it used,
atomically) and replaced by a new one of the same *family* (one login session). Presenting a used token
again means it was copied: the caller then revokes the whole family.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    password_hash: str
    admin: bool
    created_at: int


@dataclasses.dataclass(frozen=True, slots=True)
class RefreshToken:
    """A stored refresh token: its SHA-256 ``token_hash``, never the token."""

    token_hash: str
    user_id: str
    family: str
    created_at: int
    expires_at: int


class Redemption(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"  # never issued, or expired and forgotten
    EXPIRED = "expired"
    REUSED = "reused"  # redeemed before: a copy is in someone else's hands
    REVOKED = "revoked"  # its family was logged out or revoked


@dataclasses.dataclass(frozen=True, slots=True)
class Redeemed:
    outcome: Redemption
    token: RefreshToken | None


class AccountStore(Protocol):
    """Every method may raise :class:`~chatio.store.Unavailable`; ``create_account`` may raise
    :class:`~chatio.store.Conflict`. Times are milliseconds since the Unix epoch."""

    async def start(self) -> None:
        """Connect and prepare (indexes); idempotent."""

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def create_account(self, user_id: str, password_hash: str, *, admin: bool = False) -> Account:
        """Store credentials for an existing user; :class:`Conflict` when they have some already."""

    async def get_account(self, user_id: str) -> Account | None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def set_admin(self, user_id: str, admin: bool) -> bool:
        """Grant or take administration; False when there is no such account."""

    async def delete_account(self, user_id: str) -> None:
        """Forget the credentials and refresh tokens of ``user_id`` (guest or not) and remember that the
        user is deleted. Idempotent."""

    async def is_deleted(self, user_id: str) -> bool: ...

    async def add_refresh_token(self, token: RefreshToken) -> None: ...

    async def redeem_refresh_token(self, token_hash: str, now: int) -> Redeemed:
        """Mark the token used, atomically (of two concurrent calls one gets ``OK``, the other ``REUSED``),
        and return it with the outcome; a token that is not ``OK`` stays as it is."""

    async def revoke_family(self, family: str) -> int:
        """Revoke every token of a session; return how many were still usable."""

    async def revoke_user(self, user_id: str) -> int:
        """Revoke every token of every session of ``user_id``."""

    async def is_revoked(self, family: str) -> bool:
        """True once ``revoke_family`` (or ``revoke_user``) revoked the session: it never comes back."""
