"""JSON text from clients, decoded one way everywhere: Socket.IO packets and REST bodies.

orjson decodes; its nesting limit (1024 levels) bounds how deep a client can make any decoder recurse, and
a deeper text is refused. Two things JSON's grammar allows and orjson refuses are decoded by the standard
library instead, so that the schemas (:mod:`chatio.schemas`) can refuse them naming the field, with an
acknowledgement, rather than the packet being dropped unanswered: an escaped lone UTF-16 surrogate
(``"\\ud83d"``, what socket.io-client sends for a string cut in the middle of an emoji) and an integer
past 64 bits. ``NaN`` and ``Infinity``, which the standard library would take, are refused.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

#: How deep JSON text may nest (orjson's own limit); deeper text is not decoded at all.
MAX_NESTING: Final = 1024


def loads(text: str | bytes) -> Any:
    """The value of ``text``; :class:`ValueError` (a ``json.JSONDecodeError`` mostly) when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise ValueError(f"JSON nested deeper than {MAX_NESTING} levels") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_NESTING} levels") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
