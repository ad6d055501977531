"""The sockets of this process as the chat core sees them: who each one is and which rooms it joined."""

from __future__ import annotations

import dataclasses

from chatio.accounts.identity import Identity


@dataclasses.dataclass(slots=True)
class Connection:
    sid: str
    identity: Identity
    rooms: set[str] = dataclasses.field(default_factory=set)
