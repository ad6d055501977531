"""The prose of docs/performance.md that does not change from run to run (the figures do)."""

from __future__ import annotations

from typing import Final

HEADER: Final = """\
# Performance

Written by `make bench` ({command}) on {when}, at commit {commit}; the run took {minutes:.1f} minutes.
Every table below comes from that one run: rerun the command rather than editing figures by hand (the
text lives in `tools/bench/notes.py`, the tables in `tools/bench/report.py`).

Each scenario runs against chatio, against a plain python-socketio server with the same wire shape
(`tools/bench/baseline.py`: `socketio.AsyncServer(async_mode='aiohttp')`, `join_room` and
`send_message` handlers, an in-memory seq, `emit(..., room=..., skip_sid=...)`, no chatio code), and
against Node's socket.io 4.8 with the same shape (`tools/bench/node/server.mjs`, `socket.to(room).emit`,
its own `package-lock.json`, installed by `make bench`), each started fresh for each scenario, so every
figure has two ratios beside it. A *delivery* is one `message` event
arriving at one client; a message sent to a room of 50 makes 49 deliveries. Latency is the time from
the moment the sender's frame was written to the moment the receiver read the broadcast (both ends are
in the generator process, on one clock). Before each scenario the bench waits up to 30 s for other
processes to use less than a quarter of a core; what they used during each step is in the *others*
column. A virtual machine can also slow down with no sign inside it: the *CPU speed gauge* below times
a fixed Python loop before every hold, so that drift between the figures being compared shows.
"""

CHART: Final = """
![p99 latency and server CPU against offered deliveries/s, three fan-out ladders](performance-fanout.svg)

The chart (`docs/performance-fanout.svg`, drawn by `tools/bench/chart.py` from this run's holds) shows
each ladder's holds: p99 delivery latency (log scale, top) and the server's CPU (bottom) against the
deliveries/s offered. A ladder ends where its server stops keeping up.
"""

TARGETS: Final = """
A target judged while other processes used half a core or more is marked: such a run says little
either way. For the fan-out ratio, the figure shown is the most other processes used during the hold
that ended either ladder.
"""

FANOUT: Final = """\
## Fan-out: 2,000 clients in rooms of 50

The three servers run at once, pinned to the same CPU, each with its own 2,000 clients, and their holds
take turns (a step on python-socketio, then one on Node, then one on chatio, and so on) so that a change
in the machine's speed hits every ladder alike; the servers not being measured sit idle. Every client
sends, in turn, at a rate stepped up by about √2 a step (4 s each, then up to 3 s for stragglers) until
a step misses: p99 over 100 ms, a delivery lost, or a failed acknowledgement; one more step is then
tried between the last two. A miss is confirmed by holding the same rate again (not when the server was
already at 90 % CPU or more), and a third hold is allowed when other processes used a quarter of a core
or more or the generator was near its ceiling: a rate counts as kept up when one of its holds kept up,
so a single stall does not end the ladder. Every hold is shown. *Sustained* is the measured deliveries/s
of the highest step that kept up. A step marked ⚠ was taken while the generator was near its own ceiling
(see calibration below); *others* is CPU used by every process but the measured server and the generator
(the idle server included).
"""

MODERATE: Final = """\
## Moderate load: 10,000 deliveries/s, 2,000 clients, rooms of 50

204 messages/s for 8 s after a warm-up; every `send_message` asks for an acknowledgement, and the ack
round trip is timed from the same send stamp.
"""

IDLE: Final = """\
## Idle capacity: 10,000 connections

A fresh server; RSS (`VmRSS` in `/proc/<pid>/status`) a second after start, then again 3 s after 10,000
clients connected (opened 500 at a time) and each joined a room of 50. The difference divided by the
connections is the cost of one idle chat connection: the WebSocket, Engine.IO and Socket.IO sessions,
room membership and, for chatio, presence. Then 5,000 deliveries/s run over all 10,000 connections.

What chatio leaves out, per connection (measured with tracemalloc; the breakdown of what remains is the
section *Where an idle connection's memory goes* below): python-socketio on aiohttp serves a WebSocket
from inside aiohttp's request handler, so the request, its parsed headers, aiohttp's HTTP protocol and
parser, its WebSocket reader and writer, the handler's two tasks and their coroutine frames live as long
as the connection (about 12 KiB), next to Engine.IO's reader, writer and ping tasks with their queue and
timers, and the request's whole environ kept by python-socketio. chatio answers the upgrade itself, takes
the TCP connection away from aiohttp and serves it with one `Wire` object (`chatio/transport/wire.py`: no
task while the connection is idle, one shared pinger), and keeps only the client's address of the
environ.
"""

CALIBRATION: Final = """\
## The generator's ceiling

The same 2,000 clients against `tools/bench/firehose.py`, a calibration server that encodes each
broadcast once and writes the finished frame straight to every recipient's socket: it spends so little
per delivery that the generator, not the server, runs out first. On this machine the generator absorbed
at most **{absorbed:,.0f} deliveries/s**, and kept p99 under 10 ms (while its CPU was not near full)
{clean}. Above that, latency figures include the generator's own queueing: the
ladder above marks such steps with ⚠, and a server limit found there is a lower bound. A rate held while
other processes used a quarter of a core or more is held again (three holds at most) and the least
disturbed hold is shown.

*Generator's CPU busy* is how busy the CPU the generator is pinned to was, from `/proc/stat`: the
generator, the kernel's softirq work for loopback TCP (which `/proc/<pid>/stat` does not charge to any
process) and anything else scheduled there. Near 100 % the generator is starved whatever its own CPU
figure says.
"""

PROFILE: Final = """\
## Where the server's time goes

py-spy sampled each server for 4 s while it carried 70 % of its sustained fan-out rate (a separate,
unmeasured hold after the ladder: sampling pauses the process). Only samples where the server was busy
count; time in C code is charged to the Python frame that called it.

How plain python-socketio 5.18 broadcasts one message to a room of 50 (read from its source and borne
out by the profile): `AsyncManager.emit` encodes the Socket.IO packet once, then creates **one asyncio
task per recipient** (`asyncio.create_task(server._send_eio_packet(...))`) and awaits them all with
`asyncio.wait`. Each task checks the ping timeout and puts the packet on that socket's `asyncio.Queue`;
the socket's writer task wakes, polls the queue through `asyncio.wait_for` (another task and a timer),
encodes the Engine.IO packet again (`"4" + text`), and hands it to aiohttp's `send_str`, which builds a
WebSocket frame and writes it with one `send` system call. So a delivery costs two task wake-ups, a
`wait_for`, a queue round trip, a frame build and a syscall; the JSON encoding, done once per message,
hardly shows. That is why throughput per core is a few tens of thousands of deliveries a second at most,
and why encoding once and writing the finished frame to each recipient's transport directly (what the
firehose does) is worth an order of magnitude.
"""

HOW_IT_WORKS: Final = """\
## How the load generator works

`chatio-loadtest` (`chatio/loadtest/`) speaks WebSocket, Engine.IO v4 and Socket.IO v5 itself, on a
bare `asyncio.Protocol` per connection under uvloop: an HTTP upgrade to
`/socket.io/?EIO=4&transport=websocket`, the open packet `0{...}`, `40{"username":...}` to connect with
`auth`, `42<id>["join_room",{...}]` answered by `43<id>[...]`, and `3` for every ping `2`. No per-message
object, queue or task: `data_received` walks the frames in what it read, counts a `message` broadcast
by its first bytes (`42["message"`) and, on the connections that sample latency, cuts the send stamp out
of the text with one `bytes.find`. The text of every message is `t=<CLOCK_MONOTONIC ns>;`, so latency
needs no bookkeeping per message. Client frames are masked as RFC 6455 requires; no per-message deflate
is offered (browsers do offer it, and python-socketio on aiohttp accepts it, at a cost in CPU this bench
does not show).

Load is open-loop: a 2 ms tick sends whatever is due at the configured rate, round-robin over the
senders (rooms interleaved), whatever the server's acknowledgements do, so a slow server shows up as
latency and backlog rather than a slower generator. After each step the generator waits up to 3 s for
the deliveries still owed (each message is owed to the other members of the sender's room); what never
arrives is loss. It reports its own CPU use and its core's (which includes the kernel's network work),
flags a step taken above 85 % of a core or with the core 92 % busy, and reports how late its event loop
ran.

Where its ceiling is: in Python, a frame costs about 1.3 µs (0.6 µs without the latency sample), but a
delivery costs about 5 µs of the core in all, because at these rates almost every frame arrives in its
own read: uvloop's callback, the `recv` system call and the kernel's loopback TCP work dominate. Frames
per read grow when the generator falls behind, so it keeps absorbing past the point where its latency
figures stop being clean; the calibration above gives both limits for the machine of this run.

One process holds at most as many connections as its hard RLIMIT_NOFILE allows (it raises the soft
limit to the hard one itself); past about 28,000 connections to one server
address the local port range runs out: run several generators, on several machines for 100,000 and
more.
"""

REPRODUCE: Final = """\
## Reproduce

```sh
make bench                                   # everything above, about 8 minutes on 2 quiet CPUs
.venv/bin/python -m tools.bench --quick     # a smoke run with short steps (figures not meaningful)
.venv/bin/python -m tools.bench --only fanout --only idle --out /tmp/perf.md

# The load generator alone, against a server you started (seed 001's variables, or the same as flags):
CHATIO_RATE_LIMIT_PER_MINUTE=100000 taskset -c 0 .venv/bin/python -m chatio &
TARGET_URL=http://127.0.0.1:8080 CONN_COUNT=2000 ROOM_SIZE=50 RATE=200,400,800 DURATION=10 \\
  taskset -c 1 .venv/bin/chatio-loadtest      # or: make loadtest
chatio-loadtest --help                         # every setting, its variable and default
```

`make bench` pins the servers and the generator to different CPUs itself (`sched_setaffinity`, what
`taskset` does) and raises RLIMIT_NOFILE for both, as `prlimit --nofile` would. Other work on the
machine during a run shows in the *others* column and makes the figures noisier.
"""
