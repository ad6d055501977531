// One chat user on the official socket.io-client, driven by a test through stdin and stdout (JSON lines),
// following the delivery rule of docs/protocol.md as the page (static/js/joining.js, events.js) does:
//
//   node chatter.mjs <url> <name> <room> <transports, comma-separated>
//
// stdin:  {"send": text, "clientMsgId": id}   send until acknowledged (the same id every time)
//         {"quit": true}                      disconnect and exit
// stdout: {"session": pod} {"kept": message} {"acked": message, "clientMsgId": id} {"disconnect": reason}
//         {"outOfOrder": n} (each message that arrived after a later one)
//
// The client keeps the room's messages by seq and `contiguous`, the highest seq with nothing missing below
// it; a hole still open after HOLE_WAIT_MS is filled with history {after: contiguous}; after every
// reconnect it re-joins with sinceSeq: contiguous.

import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, name, room, transportList] = process.argv.slice(2);
if (!url || !name || !room || !transportList) {
  console.error("usage: node chatter.mjs <url> <name> <room> <transports>");
  process.exit(2);
}
const ACK_TIMEOUT_MS = 5_000;
const HOLE_WAIT_MS = 1_000;
const HISTORY_PAGE = 200;

const held = new Map(); // seq -> message
let contiguous = 0;
let highest = 0;
let joined = false;
let everJoined = false;
let holeTimer = null;

const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const socket = io(url, {
  auth: { username: name },
  transports: transportList.split(","),
  forceNew: true,
  reconnectionDelay: 200,
  reconnectionDelayMax: 1_000,
  timeout: ACK_TIMEOUT_MS,
});

function keep(message) {
  if (!message || message.room !== room || held.has(message.seq)) return;
  if (message.seq < highest) say({ outOfOrder: message.seq });
  held.set(message.seq, message);
  highest = Math.max(highest, message.seq);
  say({ kept: message });
  while (held.has(contiguous + 1)) contiguous += 1;
  if (highest > contiguous && !holeTimer) holeTimer = setTimeout(fillHoles, HOLE_WAIT_MS);
}

async function fillHoles() {
  holeTimer = null;
  while (joined && highest > contiguous) {
    const before = contiguous;
    let ack;
    try {
      ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("history", { room, after: contiguous, limit: HISTORY_PAGE });
    } catch {
      break;
    }
    if (!ack.ok) break;
    const first = ack.messages[0];
    if (first && first.seq > contiguous + 1) contiguous = first.seq - 1; // retention removed those
    ack.messages.forEach(keep);
    if (!ack.hasMore || contiguous === before) break;
  }
  if (joined && highest > contiguous && !holeTimer) holeTimer = setTimeout(fillHoles, HOLE_WAIT_MS);
}

async function join() {
  const payload = everJoined ? { room, sinceSeq: contiguous } : { room };
  for (;;) {
    try {
      const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("join_room", payload);
      if (ack.ok) {
        if (ack.reset) throw new Error("join_room reset: more missed than CHATIO_CATCHUP_MAX");
        if (!everJoined) contiguous = ack.history.length ? ack.history[0].seq - 1 : 0;
        everJoined = true;
        ack.history.forEach(keep);
        joined = true;
        return;
      }
    } catch (err) {
      if (!socket.connected) return; // the next connect joins again
      if (String(err.message).includes("reset")) throw err;
    }
    await sleep(200);
  }
}

socket.on("connect", () => join());
socket.on("disconnect", (reason) => {
  joined = false;
  say({ disconnect: reason });
  // socket.io-client reconnects by itself except after a server-side Socket.IO disconnect.
  if (reason === "io server disconnect") setTimeout(() => socket.connect(), 500);
});
socket.on("session", (session) => say({ session: session.pod }));
socket.on("message", keep);

async function send(text, clientMsgId) {
  for (;;) {
    if (joined) {
      try {
        const ack = await socket
          .timeout(ACK_TIMEOUT_MS)
          .emitWithAck("send_message", { room, text, clientMsgId });
        if (ack.ok) {
          keep(ack.message);
          say({ acked: ack.message, clientMsgId });
          return;
        }
        if (!["shutting_down", "unavailable"].includes(ack.error?.code)) {
          console.error(`send refused: ${JSON.stringify(ack)}`);
          process.exit(1);
        }
      } catch {
        // no ack in time (the connection went): send again with the same clientMsgId
      }
    }
    await sleep(200);
  }
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if (command.quit) {
    socket.disconnect();
    process.exit(0);
  }
  if (command.send !== undefined) send(command.send, command.clientMsgId);
});
