// make bench's third server: Node's socket.io 4.8, with the wire shape of docs/protocol.md and none of
// chatio's logic, like tools/bench/baseline.py for python-socketio.
//
//   node server.mjs --host 127.0.0.1 --port 8091
//
// join_room {room} and send_message {room, text, clientMsgId?} are acknowledged {ok, ...}; a message goes
// to the room's other sockets (socket.to(room).emit), with an in-memory seq per room. socket.io runs with
// its defaults. Ends on SIGTERM or SIGINT.

import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { Server } from "socket.io";

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const host = option("host", "127.0.0.1");
const port = Number(option("port", "8091"));
const http = createServer();
const io = new Server(http);
const seqs = new Map();

io.on("connection", (socket) => {
  const auth = socket.handshake.auth;
  const user = typeof auth?.username === "string" ? auth.username : "anonymous";

  socket.on("join_room", (data, ack) => {
    const room = String(data?.room);
    socket.join(room);
    if (typeof ack === "function") {
      ack({ ok: true, room: { id: room, name: room, public: true }, members: [], history: [], reset: false });
    }
  });

  socket.on("send_message", (data, ack) => {
    const room = String(data?.room);
    const seq = (seqs.get(room) ?? 0) + 1;
    seqs.set(room, seq);
    const message = {
      id: randomBytes(12).toString("hex"),
      room,
      seq,
      user,
      userId: user,
      text: data?.text,
      ts: Date.now(),
      clientMsgId: data?.clientMsgId ?? null,
    };
    socket.to(room).emit("message", message);
    if (typeof ack === "function") ack({ ok: true, message });
  });
});

http.listen(port, host, () => console.log(`node socket.io serving on http://${host}:${port}`));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
