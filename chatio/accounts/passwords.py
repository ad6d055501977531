"""Password hashing with argon2id (argon2-cffi), off the event loop and bounded.

Hashing is deliberately slow and memory-hard (argon2-cffi's defaults, RFC 9106's second recommended
setting: t=3, m=64 MiB, p=4), so it runs in worker threads, at most ``max_concurrent`` at a time: a flood
of logins queues here instead of exhausting memory, and the per-address limit of
``CHATIO_AUTH_RATE_PER_MINUTE`` keeps that queue short.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hash and verify passwords; every method is safe to call from the event loop."""

    def __init__(self, *, max_concurrent: int = 4, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._slots = asyncio.Semaphore(max_concurrent)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches. With no hash (no such user) the same work is done, so that the
        answer's timing does not tell whether a username exists."""
        if password_hash is None:
            if self._dummy is None:
                self._dummy = await self.hash("chatio: no such account")
            password_hash = self._dummy
            await self._verify(password_hash, password)
            return False
        return await self._verify(password_hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            try:
                return await asyncio.to_thread(self._hasher.verify, password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than today's: rehash at the next login."""
        return self._hasher.check_needs_rehash(password_hash)
