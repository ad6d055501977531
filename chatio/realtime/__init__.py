"""Socket.IO's edge of the chat: the namespace (:mod:`~chatio.realtime.namespace`: validate, authorize and
limit, call the chat core, acknowledge) and the outbox (:mod:`~chatio.realtime.outbox`) through which the
core's decisions become room membership and emits; ``/ws/chat`` (:mod:`~chatio.realtime.plainchat`),
seed 001's plain-WebSocket protocol on the same chat core and manager; and how both kinds of connection
end with their credential (:mod:`~chatio.realtime.endings`).

Thin, like :mod:`chatio.web`. May import the domain, accounts, the rate limits, :mod:`chatio.schemas` and
the transport's public names (:mod:`chatio.transport`); never :mod:`chatio.web` or a concrete backend.
"""
