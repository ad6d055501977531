"""Finished WebSocket frames (RFC 6455 section 5.2), built once and written as they are."""

from __future__ import annotations

import struct
from typing import Final

from chatio.rfc6455 import OP_BINARY, OP_CLOSE, OP_TEXT, frame


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked, final text frame carrying ``payload`` (UTF-8)."""
    return frame(OP_TEXT, payload)


def binary_frame(payload: bytes) -> bytes:
    """A complete, unmasked, final binary frame carrying ``payload``."""
    return frame(OP_BINARY, payload)


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with a status ``code`` and a short UTF-8 ``reason`` (at most 123 bytes)."""
    return frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:123].decode(errors="ignore").encode())


def packet_frame(encoded: str | bytes) -> bytes:
    """The frame for an encoded Engine.IO packet: text for a string, binary for bytes."""
    return text_frame(encoded.encode()) if isinstance(encoded, str) else binary_frame(encoded)


#: Engine.IO PING ("2") as a text frame.
PING_FRAME: Final = text_frame(b"2")
