"""Message text encrypted at rest: AES-256-GCM with a key id, so that keys can rotate.

``CHATIO_MESSAGE_KEY`` is a keyring: ``id:key[,id:key...]``, each key 32 bytes in base64 (standard or
URL-safe alphabet). The first key encrypts; every listed key decrypts, so rotating is: put a new key
first, keep the old ones after it for as long as messages encrypted with them are kept.

A sealed text is ``enc1:<key id>:<base64url(nonce || ciphertext || tag)>``. The additional authenticated
data binds it to its room and author, so a ciphertext copied onto another message does not decrypt. Text
without the prefix (stored before encryption was turned on) is returned as it is.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX: Final = "enc1:"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_KEY_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,16}")


class CipherError(ValueError):
    """A sealed text that does not decrypt: unknown key id, damaged, or moved to another message."""


def parse_keyring(raw: str) -> dict[str, bytes]:
    """``id:key,...`` to ``{id: key}`` in order (the first encrypts). Errors never show key material."""
    keys: dict[str, bytes] = {}
    for position, item in enumerate((part.strip() for part in raw.split(",")), start=1):
        key_id, colon, encoded = item.partition(":")
        if not colon or not _KEY_ID.fullmatch(key_id):
            raise ValueError(f"key {position}: expected id:base64-key, the id 1 to 16 of A-Z a-z 0-9 _ -")
        if key_id in keys:
            raise ValueError(f"key {position}: id {key_id!r} is listed twice")
        try:
            key = base64.b64decode(encoded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {key_id!r}: not base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"key {key_id!r}: expected {KEY_BYTES} bytes, got {len(key)}")
        keys[key_id] = key
    if not keys:
        raise ValueError("expected at least one id:base64-key")
    return keys


class MessageCipher:
    """Seals and opens message text with a keyring (see the module docstring)."""

    def __init__(self, keyring: dict[str, bytes]) -> None:
        if not keyring:
            raise ValueError("a keyring needs at least one key")
        self.current = next(iter(keyring))
        self._aead = {key_id: AESGCM(key) for key_id, key in keyring.items()}

    @classmethod
    def from_setting(cls, raw: str) -> MessageCipher:
        return cls(parse_keyring(raw))

    def seal(self, text: str, context: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self.current].encrypt(nonce, text.encode(), context)
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}{self.current}:{body}"

    def open(self, stored: str, context: bytes) -> str:
        """The plain text of ``stored``; unsealed text as it is. :class:`CipherError` when it cannot."""
        if not stored.startswith(PREFIX):
            return stored
        key_id, colon, body = stored[len(PREFIX) :].partition(":")
        aead = self._aead.get(key_id)
        if not colon or aead is None:
            raise CipherError(f"no key with id {key_id!r} in CHATIO_MESSAGE_KEY")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context).decode()
        except (binascii.Error, ValueError, InvalidTag):
            raise CipherError(f"message does not decrypt with key {key_id!r}") from None

    def key_id(self, stored: str) -> str | None:
        """The id of the key that sealed ``stored``, None for plain text."""
        if not stored.startswith(PREFIX):
            return None
        return stored[len(PREFIX) :].partition(":")[0]
