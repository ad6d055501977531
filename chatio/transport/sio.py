"""The shape of a Socket.IO v5 packet from a client, checked before python-socketio decodes it.

socket.io-protocol (version 5): ``<type>[<attachments>-][<namespace>,][<id>][<JSON data>]``. The reference
server closes a connection that sends a packet it cannot decode; so does chatio (the caller closes the
session on ``ValueError``), where python-socketio would log it and keep the session. A binary packet may
announce at most :data:`MAX_ATTACHMENTS` attachments (python-socketio would wait for ten billion).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from chatio import jsontext

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
#: Attachments one binary packet may announce.
MAX_ATTACHMENTS: Final = 10
_NAMES: Final = ("CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK")


@dataclasses.dataclass(frozen=True, slots=True)
class Header:
    type: int
    namespace: str
    id: int | None
    attachments: int

    @property
    def name(self) -> str:
        return _NAMES[self.type]


def check(text: str) -> Header:
    """The header of a well-formed packet from a client; ``ValueError`` naming what is wrong otherwise."""
    if not text or not "0" <= text[0] <= "6":
        raise ValueError(f"unknown Socket.IO packet type {text[:1]!r}")
    kind, position, end = int(text[0]), 1, len(text)
    if kind == CONNECT_ERROR:
        raise ValueError("a client may not send CONNECT_ERROR")
    attachments = 0
    if kind in (BINARY_EVENT, BINARY_ACK):
        dash = text.find("-", position, position + 12)
        if dash < 0 or not text[position:dash].isdigit():
            raise ValueError("a binary packet without its attachment count")
        attachments = int(text[position:dash])
        if not 1 <= attachments <= MAX_ATTACHMENTS:
            raise ValueError(f"a binary packet announcing {attachments} attachments (1 to {MAX_ATTACHMENTS})")
        position = dash + 1
    namespace = "/"
    if position < end and text[position] == "/":
        comma = text.find(",", position)
        namespace = text[position:comma] if comma >= 0 else text[position:]
        position = comma + 1 if comma >= 0 else end
    start = position
    while position < end and position - start < 19 and text[position].isdigit():
        position += 1
    ack_id = int(text[start:position]) if position > start else None
    if position < end and text[position].isdigit():
        raise ValueError("an acknowledgement id that is too long")
    data = _data(text[position:])
    _check_data(kind, data, ack_id)
    return Header(kind, namespace, ack_id, attachments)


_ABSENT: Final = object()


def _data(encoded: str) -> object:
    if not encoded:
        return _ABSENT
    try:
        return jsontext.loads(encoded)  # a lone surrogate or a huge integer is the schemas' to refuse
    except ValueError:
        raise ValueError("packet data that is not JSON") from None


def _check_data(kind: int, data: object, ack_id: int | None) -> None:
    if kind == CONNECT:
        if data is not _ABSENT and not isinstance(data, dict):
            raise ValueError("CONNECT data must be an object")
    elif kind == DISCONNECT:
        if data is not _ABSENT:
            raise ValueError("DISCONNECT carries no data")
    elif kind in (EVENT, BINARY_EVENT):
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise ValueError("EVENT data must be an array starting with the event name")
    elif not isinstance(data, list) or ack_id is None:  # ACK, BINARY_ACK
        raise ValueError("ACK data must be an array, and an ACK needs an id")
