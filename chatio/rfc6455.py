"""WebSocket framing (RFC 6455) shared by the server's wire, the load generator and the bench's firehose."""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Final

GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

# Close codes (section 7.4.1).
NORMAL: Final = 1000
GOING_AWAY: Final = 1001
PROTOCOL_ERROR: Final = 1002
INVALID_DATA: Final = 1007
POLICY_VIOLATION: Final = 1008
TOO_BIG: Final = 1009


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (both base64, as they travel)."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` repeated (client frames are masked; twice unmasks)."""
    length = len(payload)
    if not length:
        return b""
    repeated = (key * ((length + 3) // 4))[:length]
    masked = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
    return masked.to_bytes(length, "little")


RSV1: Final = 0x40  # set on the first frame of a deflated message (RFC 7692)


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask_key: bytes | None = None
) -> bytes:
    """A complete frame: final unless ``fin`` is false, ``rsv`` bits as given, masked with ``mask_key``
    (a client's 4 random bytes) or unmasked (a server's)."""
    size = len(payload)
    head = (0x80 if fin else 0) | rsv | opcode
    masked = 0 if mask_key is None else 0x80
    if size < 126:
        header = struct.pack("!BB", head, masked | size)
    elif size < 65536:
        header = struct.pack("!BBH", head, masked | 126, size)
    else:
        header = struct.pack("!BBQ", head, masked | 127, size)
    if mask_key is None:
        return header + payload
    return header + mask_key + mask(payload, mask_key)
