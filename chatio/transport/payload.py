"""Long-polling payloads (engine.io-protocol, version 4): packets separated by ``\\x1e``, binary in base64."""

from __future__ import annotations

import base64
from typing import Final

from chatio.transport.eio import Encoded

#: What separates the packets of a long-polling payload.
SEPARATOR: Final = "\x1e"


def encode_payload(packets: list[Encoded]) -> str:
    """A long-polling payload: text packets as they are, binary ones as ``b`` and base64, ``\\x1e`` apart."""
    return SEPARATOR.join(
        packet if isinstance(packet, str) else "b" + base64.b64encode(packet).decode() for packet in packets
    )


def decode_payload(body: str) -> list[Encoded]:
    """The packets of a long-polling POST body; ``ValueError`` for a malformed one."""
    packets: list[Encoded] = []
    for part in body.split(SEPARATOR):
        if not part:
            raise ValueError("an empty packet in the payload")
        if part[0] == "b":
            try:
                packets.append(base64.b64decode(part[1:], validate=True))
            except ValueError:
                raise ValueError("a binary packet that is not base64") from None
        elif part[0] in "0123456":
            packets.append(part)
        else:
            raise ValueError(f"unknown packet type {part[0]!r}")
    return packets
