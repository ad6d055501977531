"""Finished WebSocket frames (RFC 6455 section 5.2), built once and written as they are."""

from __future__ import annotations

import struct
from typing import Final


def _frame(opcode: int, payload: bytes) -> bytes:
    size = len(payload)
    head = 0x80 | opcode
    if size < 126:
        return struct.pack("!BB", head, size) + payload
    if size < 65536:
        return struct.pack("!BBH", head, 126, size) + payload
    return struct.pack("!BBQ", head, 127, size) + payload


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked, final text frame carrying ``payload`` (UTF-8)."""
    return _frame(0x1, payload)


def binary_frame(payload: bytes) -> bytes:
    """A complete, unmasked, final binary frame carrying ``payload``."""
    return _frame(0x2, payload)


def packet_frame(encoded: str | bytes) -> bytes:
    """The frame for an encoded Engine.IO packet: text for a string, binary for bytes."""
    return text_frame(encoded.encode()) if isinstance(encoded, str) else binary_frame(encoded)


#: Engine.IO PING ("2") as a text frame.
PING_FRAME: Final = text_frame(b"2")
