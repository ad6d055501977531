// Interop check: the official socket.io-client against a running chatio server.
//
//   node interop.mjs http://127.0.0.1:8080
//
// Runs the same scenario over ["websocket"] and over ["polling", "websocket"] (long-polling, then the
// upgrade). Prints one line per check; exits 0 when every check passed, 1 when one failed, 2 on bad usage.
// The whole run is bounded by RUN_DEADLINE_MS and always disconnects its sockets.

import { io } from "socket.io-client";

const RUN_DEADLINE_MS = 28_000;
const ACK_TIMEOUT_MS = 4_000;
const EVENT_TIMEOUT_MS = 4_000;
const QUIET_MS = 300; // how long we listen to be sure an event does NOT arrive

const url = process.argv[2];
if (!url || !/^https?:\/\//.test(url)) {
  console.error("usage: node interop.mjs <server url, e.g. http://127.0.0.1:8080>");
  process.exit(2);
}

const sockets = new Set();
const results = { passed: 0, failed: 0 };

function closeAll() {
  for (const socket of sockets) socket.disconnect();
  sockets.clear();
}

const deadline = setTimeout(() => {
  console.error(`FAIL run did not finish within ${RUN_DEADLINE_MS / 1000} s`);
  closeAll();
  process.exit(1);
}, RUN_DEADLINE_MS);

// --- reporting ------------------------------------------------------------------------------------------

function show(value) {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** Record one check; `detail` explains a failure. Returns `ok` so callers can skip dependent checks. */
function check(scope, name, ok, detail = "") {
  if (ok) {
    results.passed += 1;
    console.log(`ok   [${scope}] ${name}`);
  } else {
    results.failed += 1;
    console.log(`FAIL [${scope}] ${name}${detail ? `: ${detail}` : ""}`);
  }
  return ok;
}

/** A failed precondition: the rest of the scenario cannot run. */
class Abort extends Error {}

// --- socket helpers -------------------------------------------------------------------------------------

const runId = Math.random().toString(36).slice(2, 8);

/**
 * Connect with `auth.username`. Resolves with {socket, session} once both `connect` and the server's
 * `session` event arrived; rejects with the connect_error message on refusal.
 */
function connect(username, transports) {
  const socket = io(url, {
    auth: { username },
    transports,
    forceNew: true,
    reconnection: false,
    timeout: EVENT_TIMEOUT_MS,
  });
  sockets.add(socket);
  // The engine exists from the start (autoConnect), so the upgrade cannot happen before we listen.
  const firstTransport = socket.io.engine.transport.name;
  const upgraded = new Promise((resolve) => socket.io.engine.once("upgrade", (t) => resolve(t.name)));
  const session = waitFor(socket, "session");
  const connected = new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
  session.catch(() => {}); // awaited below, once connected
  return withTimeout(connected, EVENT_TIMEOUT_MS, `connect or connect_error as ${username}`)
    .then(() => session)
    .then((sessionPayload) => ({ socket, session: sessionPayload, firstTransport, upgraded }));
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolve with the first `event` payload that satisfies `match`; reject after EVENT_TIMEOUT_MS. */
function waitFor(socket, event, match = () => true, ms = EVENT_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const listener = (payload) => {
      if (!match(payload)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(payload);
    };
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no '${event}' event within ${ms} ms`));
    }, ms);
    socket.on(event, listener);
  });
}

/** Resolve with the payloads of `event` that arrive within `ms` (to prove an event did NOT come). */
function collect(socket, event, match, ms = QUIET_MS) {
  const seen = [];
  const listener = (payload) => match(payload) && seen.push(payload);
  socket.on(event, listener);
  return new Promise((resolve) =>
    setTimeout(() => {
      socket.off(event, listener);
      resolve(seen);
    }, ms),
  );
}

/** Emit a command and return its ack, or a synthetic `timeout` error ack. */
async function ask(socket, event, payload) {
  try {
    return await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
  } catch {
    return { ok: false, error: { code: "<no ack>", message: `no ack within ${ACK_TIMEOUT_MS} ms` } };
  }
}

/** Check an error ack: ok false, the expected code and (optionally) field, and a message. */
function checkError(scope, name, ack, code, field) {
  const error = ack?.error ?? {};
  const good =
    ack?.ok === false &&
    error.code === code &&
    typeof error.message === "string" &&
    (field === undefined || error.field === field);
  const wanted = field === undefined ? `code ${code}` : `code ${code}, field ${field}`;
  return check(scope, name, good, `expected ok=false with ${wanted}; got ${show(ack)}`);
}

const isMember = (members, user) => Array.isArray(members) && members.some((m) => m?.user === user);

// --- the scenario ---------------------------------------------------------------------------------------

async function scenario(transports) {
  const scope = transports.join("+");
  const tag = `${transports.length}${runId}`;
  const room = `interop-${tag}`;
  const nameA = `alice-${tag}`;
  const nameB = `bob-${tag}`;

  // Connect.
  let a;
  let b;
  try {
    a = await connect(nameA, transports);
    b = await connect(nameB, transports);
  } catch (err) {
    check(scope, "two clients connect", false, err.message);
    throw new Abort();
  }
  check(scope, "two clients connect", true);
  check(
    scope,
    "session event names the user and the pod",
    a.session?.user === nameA && typeof a.session?.userId === "string" && typeof a.session?.pod === "string",
    `got ${show(a.session)}`,
  );

  if (transports.includes("polling")) {
    check(scope, "starts on polling", a.firstTransport === "polling", `first transport ${a.firstTransport}`);
    try {
      const upgradedTo = await withTimeout(Promise.all([a.upgraded, b.upgraded]), EVENT_TIMEOUT_MS, "upgrade");
      check(
        scope,
        "upgrades from polling to websocket",
        upgradedTo.every((name) => name === "websocket") &&
          a.socket.io.engine.transport.name === "websocket" &&
          b.socket.io.engine.transport.name === "websocket",
        `upgrade events ${show(upgradedTo)}, transport now ${a.socket.io.engine.transport.name}`,
      );
    } catch (err) {
      check(scope, "upgrades from polling to websocket", false, err.message);
    }
  } else {
    check(scope, "uses websocket only", a.socket.io.engine.transport.name === "websocket");
  }

  // Join.
  const joinA = await ask(a.socket, "join_room", { room });
  const shapeOk =
    joinA?.ok === true &&
    joinA.room?.name === room &&
    typeof joinA.room?.id === "string" &&
    Array.isArray(joinA.members) &&
    Array.isArray(joinA.history) &&
    typeof joinA.reset === "boolean";
  if (!check(scope, "join_room ack has ok, room {id, name}, members, history, reset", shapeOk, `got ${show(joinA)}`)) {
    throw new Abort();
  }
  check(scope, "join_room members include the joiner", isMember(joinA.members, nameA), show(joinA.members));
  check(scope, "a new room has no history", joinA.history.length === 0, show(joinA.history));

  const bJoinedSeenByA = waitFor(a.socket, "user_joined", (e) => e?.user === nameB && e?.room === room);
  const joinB = await ask(b.socket, "join_room", { room });
  check(
    scope,
    "second join lists both members",
    joinB?.ok === true && isMember(joinB.members, nameA) && isMember(joinB.members, nameB),
    `got ${show(joinB)}`,
  );
  try {
    await bJoinedSeenByA;
    check(scope, "A gets user_joined for B", true);
  } catch (err) {
    check(scope, "A gets user_joined for B", false, err.message);
  }

  // Typing.
  const typingAtB = waitFor(b.socket, "typing", (e) => e?.user === nameA && e?.room === room && e?.typing === true);
  const typingAck = await ask(a.socket, "typing_start", { room });
  check(scope, "typing_start is acked ok", typingAck?.ok === true, `got ${show(typingAck)}`);
  try {
    await typingAtB;
    check(scope, "B gets typing {typing: true} from A", true);
  } catch (err) {
    check(scope, "B gets typing {typing: true} from A", false, err.message);
  }

  // Send a message.
  const text = `hello from ${nameA} über ${scope} ✓`;
  const clientMsgId = `cm-${tag}-1`;
  const messageAtB = waitFor(b.socket, "message", (m) => m?.clientMsgId === clientMsgId);
  const typingStoppedAtB = waitFor(b.socket, "typing", (e) => e?.user === nameA && e?.typing === false);
  const ownEcho = collect(a.socket, "message", (m) => m?.clientMsgId === clientMsgId, QUIET_MS * 3);
  const sendAck = await ask(a.socket, "send_message", { room, text, clientMsgId });
  const message = sendAck?.message;
  const ackOk =
    sendAck?.ok === true &&
    Number.isInteger(message?.seq) &&
    /^[0-9a-f]{24}$/.test(message?.id ?? "") &&
    message?.text === text &&
    message?.room === room &&
    message?.user === nameA &&
    message?.clientMsgId === clientMsgId &&
    Number.isInteger(message?.ts);
  check(scope, "send_message ack has ok and message {id, seq, text, user, room, ts}", ackOk, `got ${show(sendAck)}`);
  try {
    const got = await messageAtB;
    check(
      scope,
      "B gets the message event with the same id, seq and text",
      got.id === message?.id && got.text === text && got.seq === message?.seq && got.user === nameA,
      `ack ${show(message)}, event ${show(got)}`,
    );
  } catch (err) {
    check(scope, "B gets the message event with the same id, seq and text", false, err.message);
  }
  try {
    await typingStoppedAtB;
    check(scope, "sending ends A's typing state at B", true);
  } catch (err) {
    check(scope, "sending ends A's typing state at B", false, err.message);
  }
  const echoes = await ownEcho;
  check(scope, "the sender gets no message event for its own message", echoes.length === 0, show(echoes));

  const resend = await ask(a.socket, "send_message", { room, text, clientMsgId });
  check(
    scope,
    "resending the same clientMsgId returns the original message",
    resend?.ok === true && resend.message?.id === message?.id && resend.message?.seq === message?.seq,
    `first ${show(message)}, again ${show(resend)}`,
  );

  // History and catch-up.
  const history = await ask(b.socket, "history", { room, limit: 10 });
  check(
    scope,
    "history returns the message and hasMore",
    history?.ok === true &&
      Array.isArray(history.messages) &&
      history.messages.some((m) => m?.id === message?.id) &&
      typeof history.hasMore === "boolean",
    `got ${show(history)}`,
  );
  if (Number.isInteger(message?.seq)) {
    const rejoin = await ask(b.socket, "join_room", { room, sinceSeq: message.seq - 1 });
    check(
      scope,
      "join_room with sinceSeq returns the messages after it",
      rejoin?.ok === true &&
        rejoin.reset === false &&
        rejoin.history?.length === 1 &&
        rejoin.history[0]?.id === message.id,
      `got ${show(rejoin)}`,
    );
  }

  // Presence.
  const presenceAtB = waitFor(b.socket, "presence", (e) => e?.user === nameA && e?.status === "busy");
  const statusAck = await ask(a.socket, "user_status", { status: "busy" });
  check(scope, "user_status is acked with the status", statusAck?.ok === true && statusAck.status === "busy", show(statusAck));
  try {
    await presenceAtB;
    check(scope, "B gets presence {status: busy} for A", true);
  } catch (err) {
    check(scope, "B gets presence {status: busy} for A", false, err.message);
  }

  // Error acks.
  checkError(scope, "join_room {room: 5} is invalid_payload on room", await ask(a.socket, "join_room", { room: 5 }), "invalid_payload", "room");
  checkError(
    scope,
    "5000-character text is invalid_payload on text",
    await ask(a.socket, "send_message", { room, text: "x".repeat(5000) }),
    "invalid_payload",
    "text",
  );
  checkError(
    scope,
    "an unknown field is invalid_payload",
    await ask(a.socket, "send_message", { room, text: "hi", user: "mallory" }),
    "invalid_payload",
  );
  checkError(scope, "an unknown event is unknown_event", await ask(a.socket, "launch_rockets", { room }), "unknown_event");
  checkError(
    scope,
    "half an emoji (a lone surrogate) is invalid_payload on text",
    await ask(a.socket, "send_message", { room, text: `cut ${"😀".slice(0, 1)}` }),
    "invalid_payload",
    "text",
  );
  checkError(
    scope,
    "a seq past 2^53 is invalid_payload on after",
    await ask(a.socket, "history", { room, after: 2 ** 63 }),
    "invalid_payload",
    "after",
  );
  checkError(
    scope,
    "sending to a room not joined is not_in_room",
    await ask(a.socket, "send_message", { room: `elsewhere-${tag}`, text: "hi" }),
    "not_in_room",
  );
  const commandError = waitFor(a.socket, "command_error", (e) => e?.event === "join_room");
  a.socket.emit("join_room", { room: 5 }); // no ack callback: the error comes as an event
  try {
    const got = await commandError;
    check(
      scope,
      "a failed command without ack gets command_error",
      got.error?.code === "invalid_payload" && got.error?.field === "room",
      show(got),
    );
  } catch (err) {
    check(scope, "a failed command without ack gets command_error", false, err.message);
  }

  // Leaving.
  const leftAtA = waitFor(a.socket, "user_left", (e) => e?.user === nameB && e?.room === room);
  const leaveAck = await ask(b.socket, "leave_room", { room });
  check(scope, "leave_room is acked with the room", leaveAck?.ok === true, show(leaveAck));
  try {
    await leftAtA;
    check(scope, "A gets user_left for B", true);
  } catch (err) {
    check(scope, "A gets user_left for B", false, err.message);
  }

  a.socket.disconnect();
  b.socket.disconnect();
  sockets.delete(a.socket);
  sockets.delete(b.socket);
}

async function refusedConnection() {
  const scope = "auth";
  try {
    await connect("not a valid name!", ["websocket"]);
    check(scope, "an invalid username is refused with connect_error", false, "the connection was accepted");
  } catch (err) {
    check(
      scope,
      "an invalid username is refused with connect_error",
      /connect_error: .*username/.test(err.message),
      err.message,
    );
  }
}

async function main() {
  console.log(`chatio interop against ${url} with socket.io-client`);
  for (const transports of [["websocket"], ["polling", "websocket"]]) {
    try {
      await scenario(transports);
    } catch (err) {
      if (!(err instanceof Abort)) check(transports.join("+"), "scenario ran to the end", false, err.stack || String(err));
    } finally {
      closeAll();
    }
  }
  await refusedConnection();
  closeAll();
  clearTimeout(deadline);
  const total = results.passed + results.failed;
  if (results.failed) {
    console.error(`FAILED: ${results.failed} of ${total} checks failed`);
    process.exit(1);
  }
  console.log(`passed: all ${total} checks`);
  process.exit(0);
}

main();
