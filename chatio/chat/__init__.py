"""The chat domain: who may be where (:mod:`~chatio.chat.access`) and what happens in a room
(:mod:`~chatio.chat.service`: connecting, joining, sending, presence changes), with the payload shapes the
outside sees (:mod:`~chatio.chat.wire`) and the protocols it speaks through (:mod:`~chatio.chat.ports`).
Beside the core: the sockets of this process (:mod:`~chatio.chat.connections`), history pages
(:mod:`~chatio.chat.history`), typing indicators (:mod:`~chatio.chat.indicators`), the store deadline
(:mod:`~chatio.chat.deadline`), changes to stored messages (:mod:`~chatio.chat.changes`), catch-up on
joining (:mod:`~chatio.chat.catchup`), read marks (:mod:`~chatio.chat.reads`), moderation
(:mod:`~chatio.chat.moderation`, :mod:`~chatio.chat.mutes`), retention (:mod:`~chatio.chat.retention`) and
display names (:mod:`~chatio.chat.names`).

The domain decides and tells: it persists through the store protocols and speaks to people through the
:class:`~chatio.chat.ports.Outbox` protocol. It may import :mod:`chatio.store`, :mod:`chatio.presence`,
:mod:`chatio.ratelimit`, :mod:`chatio.accounts` (identity), :mod:`chatio.config` and
:mod:`chatio.errors`; never aiohttp, python-socketio, Redis or MongoDB drivers, nor the layers above it
(realtime, web, transport). ``tests/test_layout.py`` holds it to that.
"""
