"""Engine.IO v4 sessions, on long-polling or on a :class:`~chatio.transport.wire.Wire`, and their pinger.

A :class:`Session` is one Engine.IO connection: its id, its transport, and what it needs to keep the
protocol (engine.io-protocol, version 4):

* **Long-polling** keeps a deque of encoded packets and at most one pending GET (a future). A GET takes
  what waits (at most :data:`POLL_MAX_PACKETS`, what python-engineio's client decodes in one payload) or
  waits for the next packet; a second GET while one is pending closes the session, unless the pending
  one's connection is gone (the engine checks, since aiohttp does not cancel its handler).
* **WebSocket**: the session is its wire's receiver; an outgoing packet becomes a finished frame written at
  once, in call order, or after the wire's backlog when the client reads slowly. No task while idle.
* **Upgrade**: a :class:`Probe` answers ``2probe`` with ``3probe``, releases the pending poll with a NOOP
  (a poll that comes later gets one soon: :mod:`chatio.transport.engine`), and on ``5`` moves the session
  to its wire; anything else ends the probing WebSocket.
* **Heartbeat**: one :class:`~chatio.transport.pinger.Pinger` per server pings every session, spread over
  the interval, and closes a session whose PONG is late on time (a FIFO of deadlines, checked each tick);
  it also closes a session that has not joined a Socket.IO namespace by its connect deadline.
* **The slow-consumer bound**: past ``max_backlog`` packets waiting (either transport), the engine is told
  (``overflowed``) once; the packet is dropped.
* **Commands in order**: :meth:`Session.in_order` runs coroutines one after another, from a task that
  exists only while some wait; past :data:`COMMANDS_AHEAD` waiting, reading from the client waits too.

The :class:`Engine` protocol below is all a session needs from its server (:mod:`chatio.transport.engine`);
the :class:`~chatio.transport.pinger.Pinger` lives in its own module.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final, Protocol

from chatio.rfc6455 import GOING_AWAY, NORMAL, POLICY_VIOLATION
from chatio.transport.frames import PING_FRAME, packet_frame, text_frame
from chatio.transport.wire import Wire

if TYPE_CHECKING:
    from chatio.transport.pinger import Pinger

log = logging.getLogger(__name__)

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0", "1", "2", "3", "4", "5", "6"
#: Packets one poll answers at most: python-engineio's client refuses a payload of more.
POLL_MAX_PACKETS: Final = 16
#: Commands of one session waiting to run above which the session stops reading its client.
COMMANDS_AHEAD: Final = 32

#: An encoded Engine.IO packet: text (type digit and data) or the bytes of a binary MESSAGE.
Encoded = str | bytes

#: The command runners of every session (a task exists only while its session's commands wait).
_RUNNERS: set[asyncio.Task[None]] = set()


class Engine(Protocol):
    """What a session needs from the server that owns it."""

    max_backlog: int
    pinger: Pinger

    async def dispatch(self, session: Session, data: Encoded) -> None:
        """A MESSAGE's data from the client, in order."""

    async def ended(self, session: Session, reason: str) -> None:
        """The session closed (``reason``: client, server, ping timeout, transport, shutdown...)."""

    def overflowed(self, session: Session) -> None:
        """The session reached its bound of waiting packets: told once."""

    def bad_packet(self) -> None:
        """A session sent a malformed packet (and is being closed)."""

    def compressed(self) -> bool:
        """Whether WebSockets may negotiate per-message deflate."""


class Session:
    """One Engine.IO session; see the module docstring."""

    __slots__ = (
        "_commands",
        "_resume",
        "bad_packets",
        "closed",
        "engine",
        "environ",
        "overflowed",
        "ping_sent",
        "poll",
        "poll_connection",
        "posting",
        "probe",
        "queue",
        "session",
        "sid",
        "started",
        "upgraded",
        "wire",
    )

    def __init__(self, engine: Engine, sid: str, environ: dict[str, Any]) -> None:
        self.engine = engine
        self.sid = sid
        self.environ = environ
        #: python-socketio's per-session data (namespace sessions); created when first asked for.
        self.session: dict[str, Any] | None = None
        self.closed = False
        self.overflowed = False
        self.upgraded = False
        self.bad_packets = 0
        self.started = time.monotonic()
        #: When the PING waiting for its PONG was sent (monotonic), else None.
        self.ping_sent: float | None = None
        # long-polling: what waits for the next GET, the pending GET, whether a POST is being read
        self.queue: deque[Encoded] | None = deque()
        self.poll: asyncio.Future[None] | None = None
        #: The connection the pending GET came on, to tell whether its client is still there.
        self.poll_connection: asyncio.BaseTransport | None = None
        self.posting = False
        self.probe: Probe | None = None
        self.wire: Wire | None = None
        self._commands: deque[Coroutine[Any, Any, Any]] | None = None
        self._resume: asyncio.Future[None] | None = None

    @property
    def transport(self) -> str:
        return "websocket" if self.wire is not None else "polling"

    # --- sending ---------------------------------------------------------------------------------------

    def send(self, encoded: Encoded) -> bool:
        """Send one encoded packet now or after those waiting. False when it was dropped."""
        if self.closed:
            return False
        wire = self.wire
        if wire is not None:
            return wire.send(packet_frame(encoded))
        return self.enqueue(encoded)

    def push(self, frame: bytes, encoded: Encoded) -> bool:
        """Send a packet whose WebSocket frame is already built (a broadcast's, shared by its recipients)."""
        if self.closed:
            return False
        wire = self.wire
        if wire is not None:
            return wire.send(frame)
        return self.enqueue(encoded)

    def send_text(self, message: bytes) -> bool:
        """Send a MESSAGE carrying ``message`` (UTF-8 text, a Socket.IO packet)."""
        if self.closed:
            return False
        wire = self.wire
        if wire is not None:
            return wire.send(text_frame(b"4" + message))
        return self.enqueue(MESSAGE + message.decode())

    def enqueue(self, encoded: Encoded) -> bool:
        queue = self.queue
        assert queue is not None
        bound = self.engine.max_backlog
        if bound and len(queue) >= bound:
            self.on_overflow()
            return False
        queue.append(encoded)
        poll = self.poll
        if poll is not None and not poll.done():
            poll.set_result(None)
        return True

    def ping(self, now: float) -> None:
        self.ping_sent = now
        if self.wire is not None:
            self.wire.send(PING_FRAME)
        else:
            self.enqueue(PING)

    def drop_backlog(self) -> None:
        """Forget the packets waiting for this session (an evicted slow consumer will not read them)."""
        if self.wire is not None:
            self.wire.drop_backlog()
        elif self.queue is not None:
            self.queue.clear()

    @property
    def sending(self) -> bool:
        """True while packets wait for a client that can still receive them."""
        if self.wire is not None:
            return self.wire.sending
        return bool(self.queue) and self.poll is not None

    def on_overflow(self) -> None:
        if not self.overflowed:
            self.overflowed = True
            self.engine.overflowed(self)

    # --- long-polling ----------------------------------------------------------------------------------

    def take(self) -> list[Encoded]:
        """What the next poll carries: at most :data:`POLL_MAX_PACKETS` waiting packets, in order."""
        queue = self.queue
        if not queue:
            return []
        if len(queue) <= POLL_MAX_PACKETS:
            taken = list(queue)
            queue.clear()
            return taken
        return [queue.popleft() for _ in range(POLL_MAX_PACKETS)]

    # --- receiving -------------------------------------------------------------------------------------

    async def receive(self, data: Encoded) -> None:
        """One Engine.IO packet from the client (text packets start with their type; bytes: MESSAGE).

        Raises ``ValueError`` for a packet the protocol does not allow: the caller closes the session.
        """
        if type(data) is not str:
            await self.engine.dispatch(self, data)
        elif not data:
            raise ValueError("an empty Engine.IO packet")
        elif data[0] == MESSAGE:
            await self.engine.dispatch(self, data[1:])
        elif data[0] == PONG and len(data) == 1:
            self.ping_sent = None
        elif data[0] == CLOSE and len(data) == 1:
            await self.close("client disconnect", notify=False)
        elif data[0] == PING and data == "2probe" and self.upgraded:
            raise ValueError("a probe on an upgraded session")
        elif data[0] == NOOP and len(data) == 1:
            pass
        else:
            raise ValueError(f"unexpected Engine.IO packet {data[:16]!r}")

    def in_order(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` after every coroutine given before it (one task while some wait, none while idle)."""
        if self._commands is None:
            self._commands = deque((work,))
            runner = asyncio.get_running_loop().create_task(self._run_commands())
            _RUNNERS.add(runner)  # the loop keeps only a weak reference to a task
            runner.add_done_callback(_RUNNERS.discard)
        else:
            self._commands.append(work)

    @property
    def busy(self) -> bool:
        """True while commands of this session wait or run."""
        return self._commands is not None

    async def backpressure(self) -> None:
        """Wait while too many commands of this session wait to run (the reader then reads no more)."""
        commands = self._commands
        if commands is None or len(commands) < COMMANDS_AHEAD or self.closed:
            return
        self._resume = asyncio.get_running_loop().create_future()
        try:
            await self._resume
        finally:
            self._resume = None

    async def _run_commands(self) -> None:
        commands = self._commands
        assert commands is not None
        try:
            while commands:
                work = commands.popleft()
                resume = self._resume
                if resume is not None and len(commands) <= COMMANDS_AHEAD // 2 and not resume.done():
                    resume.set_result(None)
                try:
                    await work
                except Exception:
                    log.exception("a command of session %s failed", self.sid)
        finally:
            self._commands = None
            if self._resume is not None and not self._resume.done():
                self._resume.set_result(None)

    # --- closing ---------------------------------------------------------------------------------------

    async def close(self, reason: str, *, notify: bool = True, code: int = NORMAL) -> None:
        """End the session: the client hears a CLOSE packet when ``notify``, else only its transport ends.

        A pending poll is answered (CLOSE, or NOOP when the client closed); a WebSocket gets a close frame
        with ``code``. The engine's ``ended`` runs once.
        """
        if self.closed:
            return
        self.closed = True
        self.engine.pinger.discard(self)
        wire, poll = self.wire, self.poll
        if wire is not None:
            if notify:
                wire.send(text_frame(CLOSE.encode()))
            wire.close(code)
        elif not notify and reason != "client disconnect":
            # The client must see its transport end, not a CLOSE: it gets what waits (an eviction's
            # notice, say), and its next poll finds no session; with nothing waiting, the poll fails.
            if not self.queue:
                self.queue = None
        elif self.queue is not None:
            # The next poll (or the pending one) ends the session for the client: it gets what waited
            # and CLOSE, or NOOP when the client asked for the close itself.
            self.queue.append(CLOSE if notify else NOOP)
        if poll is not None and not poll.done():
            poll.set_result(None)
        if self.probe is not None:
            self.probe.wire.close(GOING_AWAY, "the session ended")
        await self.engine.ended(self, reason)

    # --- the wire's receiver (a WebSocket session) -------------------------------------------------------

    async def on_message(self, data: str | bytes) -> None:
        if not self.closed:
            await self.take_in(data)

    async def take_in(self, data: Encoded) -> bool:
        """:meth:`receive` a packet, then wait while too many commands wait; False: it was refused."""
        try:
            await self.receive(data)
        except ValueError as exc:
            await self.refuse(exc)
            return False
        await self.backpressure()
        return True

    async def refuse(self, exc: Exception) -> None:
        """A packet the protocols refuse: count it and close the session (as Node's server does)."""
        self.bad_packets += 1
        log.info("closing session %s: bad packet: %s", self.sid, exc)
        self.engine.bad_packet()
        await self.close("bad packet", code=POLICY_VIOLATION)

    async def on_lost(self) -> None:
        await self.close("transport close", notify=False)


def adopt(session: Session, wire: Wire) -> None:
    """Move ``session`` to ``wire``: what waited for a poll is written first, in order."""
    waiting = session.queue or ()
    session.queue = None
    session.wire = wire
    session.upgraded = True
    session.probe = None
    wire.receiver = session
    for encoded in waiting:
        if encoded != NOOP:
            wire.send(packet_frame(encoded))


class Probe:
    """The receiver of a WebSocket that upgrades a long-polling session (Engine.IO's probe handshake)."""

    __slots__ = ("probed", "session", "wire")

    def __init__(self, session: Session, wire: Wire) -> None:
        self.session = session
        self.wire = wire
        self.probed = False

    async def on_message(self, data: str | bytes) -> None:
        session, wire = self.session, self.wire
        if session.closed or session.probe is not self:
            wire.close(GOING_AWAY, "the session ended")
        elif not self.probed and data == "2probe":
            self.probed = True
            wire.send(text_frame(b"3probe"))
            # The pending poll (or the next one) ends with a NOOP, so the client can pause polling.
            session.enqueue(NOOP)
        elif self.probed and data == UPGRADE:
            poll = session.poll
            if poll is not None and not poll.done():
                poll.set_result(None)  # its request answers what is left, or nothing
            adopt(session, wire)
        else:
            session.probe = None
            wire.close(NORMAL, "bad upgrade")

    async def on_lost(self) -> None:
        if self.session.probe is self:
            self.session.probe = None

    def on_overflow(self) -> None:
        return None
