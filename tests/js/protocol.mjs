// Protocol scenarios: the official socket.io-client against a chatio server that the calling test
// (tests/e2e/test_js_protocol.py) serves with a 300 ms ping interval and timeout and a test namespace
// "/echo" (its handlers: "ask_me" calls the client back with timeout().emitWithAck's Python twin, call();
// "note" answers a volatile emit with "noted").
//
//   node protocol.mjs http://127.0.0.1:PORT
//
// Prints one line per check; exits 0 when every check passed, 1 when one failed, 2 on bad usage.

import { io } from "socket.io-client";

const RUN_DEADLINE_MS = 40_000;
const WAIT_MS = 5_000;

const url = process.argv[2];
if (!url || !/^https?:\/\//.test(url)) {
  console.error("usage: node protocol.mjs <server url>");
  process.exit(2);
}

const sockets = new Set();
let failed = 0;
let passed = 0;

function check(scope, name, ok, detail = "") {
  if (ok) passed += 1;
  else failed += 1;
  console.log(`${ok ? "ok  " : "FAIL"} [${scope}] ${name}${!ok && detail ? `: ${detail}` : ""}`);
  return ok;
}

const deadline = setTimeout(() => {
  console.error(`FAIL run did not finish within ${RUN_DEADLINE_MS / 1000} s`);
  for (const socket of sockets) socket.disconnect();
  process.exit(1);
}, RUN_DEADLINE_MS);

const run = Math.random().toString(36).slice(2, 8);

function open(path, username, options = {}) {
  const socket = io(`${url}${path}`, { auth: { username }, forceNew: true, reconnection: false, ...options });
  sockets.add(socket);
  return socket;
}

function once(emitter, event, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

async function attempt(scope, name, body) {
  try {
    const [ok, detail] = await body();
    check(scope, name, ok, detail);
  } catch (err) {
    check(scope, name, false, err.message);
  }
}

async function pollingOnly() {
  const socket = open("/", `poll-${run}`, { transports: ["polling"] });
  await attempt("polling", "connects and stays on long-polling", async () => {
    await once(socket, "connect");
    const ack = await socket.timeout(WAIT_MS).emitWithAck("join_room", { room: `p-${run}` });
    const name = socket.io.engine.transport.name;
    return [ack?.ok === true && name === "polling", `ack ${JSON.stringify(ack)}, transport ${name}`];
  });
  socket.disconnect();
}

async function binaryRefused() {
  const socket = open("/", `bin-${run}`, { transports: ["websocket"] });
  await attempt("binary", "a binary argument is refused with invalid_payload, the socket stays", async () => {
    await once(socket, "connect");
    await socket.timeout(WAIT_MS).emitWithAck("join_room", { room: `b-${run}` });
    const ack = await socket
      .timeout(WAIT_MS)
      .emitWithAck("send_message", { room: `b-${run}`, text: new Uint8Array([1, 2, 3]) });
    const again = await socket.timeout(WAIT_MS).emitWithAck("send_message", { room: `b-${run}`, text: "after" });
    return [
      ack?.ok === false && ack.error?.code === "invalid_payload" && again?.ok === true && socket.connected,
      `binary ack ${JSON.stringify(ack)}, then ${JSON.stringify(again)}`,
    ];
  });
  socket.disconnect();
}

async function namespacesAndAcks() {
  const main = open("/", `ns-${run}`, { transports: ["websocket"] });
  await once(main, "connect");
  const echo = main.io.socket("/echo", { auth: { username: `ns-${run}` } });
  sockets.add(echo);
  echo.on("question", (data, callback) => callback({ answer: data.n * 2 }));
  await attempt("namespaces", "a second namespace connects on the same connection", async () => {
    if (!echo.connected) await once(echo, "connect");
    return [echo.connected && main.connected, ""];
  });
  await attempt("acks", "the server calls the client and gets its ack (server to client)", async () => {
    const ack = await echo.timeout(WAIT_MS).emitWithAck("ask_me", { n: 21 });
    return [ack?.answer === 42, `got ${JSON.stringify(ack)}`];
  });
  await attempt("volatile", "a volatile emit reaches the server on a connected socket", async () => {
    const noted = once(echo, "noted");
    echo.volatile.emit("note", { text: "v" });
    const [payload] = await noted;
    return [payload?.text === "v", JSON.stringify(payload)];
  });
  const refused = main.io.socket("/nowhere", { auth: { username: `ns-${run}` } });
  sockets.add(refused);
  await attempt("namespaces", "an unknown namespace gets connect_error, the others carry on", async () => {
    const [err] = await once(refused, "connect_error");
    const ack = await main.timeout(WAIT_MS).emitWithAck("user_status", { status: "online" });
    return [err instanceof Error && ack?.ok === true, `${err?.message}; ack ${JSON.stringify(ack)}`];
  });
  main.disconnect();
  echo.disconnect();
  refused.disconnect();
}

async function pingTimeoutAndReconnect() {
  const socket = open("/", `ping-${run}`, {
    transports: ["websocket"],
    reconnection: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
  });
  await once(socket, "connect");
  const engine = socket.io.engine;
  await attempt("heartbeat", "the client reads the intervals in milliseconds", async () => [
    engine._pingInterval === 300 && engine._pingTimeout === 300,
    `pingInterval ${engine._pingInterval}, pingTimeout ${engine._pingTimeout}`,
  ]);
  // Hide the server's pings from the client (still answering them, so the server keeps the session): the
  // client's own ping timeout must fire, pingInterval + pingTimeout after the last ping it saw.
  const transport = engine.transport;
  const receive = transport.onPacket.bind(transport);
  transport.onPacket = (packet) => (packet.type === "ping" ? transport.send([{ type: "pong" }]) : receive(packet));
  const started = Date.now();
  await attempt("heartbeat", "socket.io-client detects the ping timeout on its own", async () => {
    const [reason] = await once(socket, "disconnect");
    const waited = Date.now() - started;
    return [reason === "ping timeout" && waited < 3_000, `reason ${reason} after ${waited} ms`];
  });
  await attempt("reconnection", "the client reconnects and is served again", async () => {
    await once(socket, "connect");
    const ack = await socket.timeout(WAIT_MS).emitWithAck("join_room", { room: `r-${run}` });
    return [ack?.ok === true, JSON.stringify(ack)];
  });
  socket.disconnect();
}

async function main() {
  console.log(`chatio protocol scenarios against ${url} with socket.io-client`);
  for (const scenario of [pollingOnly, binaryRefused, namespacesAndAcks, pingTimeoutAndReconnect]) {
    try {
      await scenario();
    } catch (err) {
      check(scenario.name, "ran to the end", false, err.stack || String(err));
    }
  }
  for (const socket of sockets) socket.disconnect();
  clearTimeout(deadline);
  if (failed) {
    console.error(`FAILED: ${failed} of ${passed + failed} checks failed`);
    process.exit(1);
  }
  console.log(`passed: all ${passed} checks`);
  process.exit(0);
}

main();
