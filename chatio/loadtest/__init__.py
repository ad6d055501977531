"""chatio's load generator: raw Engine.IO/Socket.IO over WebSocket, many connections on one event loop.

Run it as ``chatio-loadtest`` (or ``python -m chatio.loadtest``); ``docs/performance.md`` says how it
works and where its ceiling is. The bench (:mod:`tools.bench`) drives :class:`Swarm` directly.
Shipped with the server but independent of it: it imports only :mod:`chatio.rfc6455`.
"""

from chatio.loadtest.config import LoadConfig
from chatio.loadtest.swarm import RampResult, StepResult, Swarm

__all__ = ["LoadConfig", "RampResult", "StepResult", "Swarm"]
