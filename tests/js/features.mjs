// Edits, deletions, replies, reactions and catch-up from the official socket.io-client.
//
//   node features.mjs <url of alice's server> [<url of bob's server>]
//
// With two URLs, alice and bob sit on different chatio processes (a cluster through Redis). Prints one
// line per check; exits 0 when every check passed, 1 otherwise. Bounded by RUN_DEADLINE_MS.

import { io } from "socket.io-client";

const RUN_DEADLINE_MS = 30_000;
const WAIT_MS = 5_000;

const [urlA, urlB = urlA] = process.argv.slice(2);
if (!urlA || !/^https?:\/\//.test(urlA) || !/^https?:\/\//.test(urlB)) {
  console.error("usage: node features.mjs <url> [<second url>]");
  process.exit(2);
}

const open = new Set();
let passed = 0;
let failed = 0;
const timer = setTimeout(() => finish(`run did not finish within ${RUN_DEADLINE_MS / 1000} s`), RUN_DEADLINE_MS);

function finish(problem) {
  for (const socket of open) socket.disconnect();
  clearTimeout(timer);
  if (problem) {
    failed += 1;
    console.log(`FAIL ${problem}`);
  }
  console.log(failed ? `FAILED: ${failed} of ${passed + failed} checks failed` : `passed: all ${passed} checks`);
  process.exit(failed ? 1 : 0);
}

function expect(name, ok, got) {
  if (ok) passed += 1;
  else failed += 1;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : `: got ${JSON.stringify(got)?.slice(0, 400)}`}`);
}

/** A connected socket that keeps every event, so a test can wait for one that already arrived. */
async function user(url, username) {
  const socket = io(url, { auth: { username }, transports: ["websocket"], forceNew: true, reconnection: false });
  open.add(socket);
  const inbox = [];
  const waiting = [];
  socket.onAny((event, payload) => {
    inbox.push([event, payload]);
    for (const waiter of [...waiting]) waiter();
  });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  const next = (event, match = () => true) =>
    new Promise((resolve, reject) => {
      const look = () => {
        const index = inbox.findIndex(([name, payload]) => name === event && match(payload));
        if (index < 0) return false;
        const [[, payload]] = inbox.splice(index, 1);
        waiting.splice(waiting.indexOf(look), 1);
        clearTimeout(expiry);
        resolve(payload);
        return true;
      };
      const expiry = setTimeout(() => {
        waiting.splice(waiting.indexOf(look), 1);
        reject(new Error(`no ${event} within ${WAIT_MS} ms`));
      }, WAIT_MS);
      waiting.push(look);
      look();
    });
  const ask = (event, payload) => socket.timeout(WAIT_MS).emitWithAck(event, payload);
  return { socket, next, ask };
}

async function main() {
  const tag = Math.random().toString(36).slice(2, 8);
  const room = `features-${tag}`;
  const [nameA, nameB, nameM] = [`alice-${tag}`, `bob-${tag}`, `mallory-${tag}`];
  const alice = await user(urlA, nameA);
  let bob = await user(urlB, nameB);
  await alice.ask("join_room", { room });
  await bob.ask("join_room", { room });

  const parent = (await alice.ask("send_message", { room, text: "ship it?" })).message;
  await bob.next("message", (m) => m.id === parent.id);
  const reply = await bob.ask("send_message", { room, text: "yes", replyTo: parent.id });
  expect(
    "a reply quotes its parent's author and text",
    reply.ok && reply.message.replyTo?.user === nameA && reply.message.replyTo?.excerpt === "ship it?",
    reply,
  );
  const replyAtA = await alice.next("message", (m) => m.id === reply.message?.id);
  expect("the other process delivers the reply with its quote", replyAtA.replyTo?.id === parent.id, replyAtA);

  const edited = await alice.ask("edit_message", { room, id: parent.id, text: "ship it today?" });
  expect("edit_message is acked with editedAt", edited.ok && edited.message.editedAt > 0, edited);
  const updated = await bob.next("message_updated", (m) => m.id === parent.id);
  expect(
    "message_updated reaches the room with the text and the reply count",
    updated.text === "ship it today?" && updated.replyCount === 1 && updated.change === edited.message.change,
    updated,
  );

  const reacted = await bob.ask("react", { room, id: parent.id, emoji: "🎉" });
  expect("react is acked with the reactions", reacted.ok && reacted.message.reactions[0]?.count === 1, reacted);
  const reaction = await alice.next("reaction", (e) => e.id === parent.id);
  expect(
    "reaction names who and what",
    reaction.user === nameB && reaction.emoji === "🎉" && reaction.added === true,
    reaction,
  );
  await bob.ask("react", { room, id: parent.id, emoji: "👍" });
  await alice.next("reaction", (e) => e.emoji === "👍" && e.added === true);
  const taken = await bob.ask("unreact", { room, id: parent.id, emoji: "👍" });
  expect("unreact takes a reaction back", taken.ok && !taken.message.reactions.some((r) => r.emoji === "👍"), taken);
  const untold = await alice.next("reaction", (e) => e.emoji === "👍" && e.added === false);
  expect("the room hears of the unreact", untold.user === nameB, untold);

  const refusals = [
    ["editing another's message is forbidden", bob, "edit_message", { room, id: parent.id, text: "mine" }, "forbidden"],
    ["a member deleting another's message is forbidden", bob, "delete_message", { room, id: parent.id }, "forbidden"],
    ["an emoji outside the set is invalid_payload", bob, "react", { room, id: parent.id, emoji: "🦄" }, "invalid_payload"],
  ];
  for (const [name, who, event, payload, code] of refusals) {
    const ack = await who.ask(event, payload);
    expect(name, ack.ok === false && ack.error?.code === code && typeof ack.error.message === "string", ack);
  }
  const mallory = await user(urlB, nameM);
  const outsider = await mallory.ask("react", { room, id: parent.id, emoji: "👍" });
  expect("reacting in a room one is not in is not_in_room", outsider.error?.code === "not_in_room", outsider);

  // Moderation: alice owns the room (she made it by joining first); mallory is on the other process.
  await mallory.ask("join_room", { room });
  const memberBans = await bob.ask("ban", { room, user: nameA });
  expect("a member banning the owner is forbidden", memberBans.error?.code === "forbidden", memberBans);
  const mute = await alice.ask("mute", { room, user: nameM, seconds: 60, reason: "calm down" });
  expect("mute is acked with its end", mute.ok && mute.action?.until > Date.now(), mute);
  const mutedNotice = await mallory.next("moderated", (e) => e.action === "mute");
  expect("the muted user is told why", mutedNotice.reason === "calm down" && mutedNotice.by === nameA, mutedNotice);
  let silenced;
  for (let attempt = 0; attempt < 50 && silenced?.error?.code !== "muted"; attempt += 1) {
    silenced = await mallory.ask("send_message", { room, text: "can I still talk?" });
    if (silenced?.error?.code !== "muted") await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect("a muted user's message is refused", silenced?.error?.code === "muted", silenced);
  const ban = await alice.ask("ban", { room, user: nameM, reason: "spam" });
  expect("ban is acked", ban.ok && ban.action?.action === "ban", ban);
  await mallory.next("moderated", (e) => e.action === "ban");
  const rejoin = await mallory.ask("join_room", { room });
  expect("a banned user cannot join again", rejoin.error?.code === "banned", rejoin);
  const unban = await alice.ask("unban", { room, user: nameM });
  const welcome = await mallory.ask("join_room", { room });
  expect("after unban the user joins again", unban.ok && welcome.ok, [unban, welcome]);
  const unmute = await alice.ask("unmute", { room, user: nameM });
  let spoken;
  for (let attempt = 0; attempt < 50 && !spoken?.ok; attempt += 1) {
    spoken = await mallory.ask("send_message", { room, text: "thanks" });
    if (!spoken?.ok) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect("after unmute the user speaks again", unmute.ok && spoken?.ok === true, [unmute, spoken]);
  const kick = await alice.ask("kick", { room, user: nameM, reason: "take a break" });
  await mallory.next("moderated", (e) => e.action === "kick");
  let outside;
  for (let attempt = 0; attempt < 50 && outside?.error?.code !== "not_in_room"; attempt += 1) {
    outside = await mallory.ask("typing_start", { room });
    if (outside?.error?.code !== "not_in_room") await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect("a kicked user's socket has left the room", kick.ok && outside?.error?.code === "not_in_room", [kick, outside]);
  const options = await alice.ask("set_room_options", { room, receipts: false, retentionDays: 30 });
  expect(
    "set_room_options is acked with the room",
    options.ok && options.room?.receipts === false && options.room?.retentionDays === 30,
    options,
  );
  const roomUpdated = await bob.next("room_updated", (r) => r.id === room);
  expect("the room gets room_updated", roomUpdated.receipts === false, roomUpdated);
  const notOwner = await bob.ask("set_room_options", { room, receipts: true });
  expect("a member changing the room's options is forbidden", notOwner.error?.code === "forbidden", notOwner);

  const seenSeq = reply.message.seq;
  const seenChange = reaction.change;
  bob.socket.disconnect();
  const deleted = await alice.ask("delete_message", { room, id: parent.id });
  expect("delete_message leaves a tombstone", deleted.message?.deleted === true && deleted.message.text === "", deleted);

  bob = await user(urlB, nameB);
  const back = await bob.ask("join_room", { room, sinceSeq: seenSeq, sinceChange: seenChange });
  expect(
    "catch-up after a disconnect brings the deletion",
    back.ok && back.reset === false && back.changes.some((m) => m.id === parent.id && m.deleted),
    back,
  );
  // Read marks: bob reads on this device; his other device (on the other process) learns of it.
  const laptop = await user(urlA, nameB);
  await laptop.ask("join_room", { room });
  await laptop.ask("mark_read", { room, seq: Number.MAX_SAFE_INTEGER }); // capped at the newest message
  const newer = (await alice.ask("send_message", { room, text: "still there?" })).message;
  const before = await laptop.ask("join_room", { room });
  expect("join_room counts what is unread", before.unread === 1 && before.lastMessage?.id === newer.id, before);
  const read = await bob.ask("mark_read", { room, seq: newer.seq });
  expect("mark_read is acked with nothing unread", read.ok && read.lastRead === newer.seq && read.unread === 0, read);
  const told = await laptop.next("read", (e) => e.room === room);
  expect("the user's other device gets read", told.user === nameB && told.seq === newer.seq, told);
  const after = await laptop.ask("join_room", { room });
  expect("the other device's join shows nothing unread", after.unread === 0 && after.lastRead === newer.seq, after);
  const lower = await laptop.ask("mark_read", { room, seq: 1 });
  expect("a read mark never goes back", lower.lastRead === newer.seq, lower);

  const history = await bob.ask("history", { room });
  expect(
    "history shows the tombstone and a reply to a deleted message",
    history.messages[0]?.deleted === true && history.messages[1]?.replyTo?.deleted === true,
    history,
  );
  finish();
}

main().catch((error) => finish(error.stack || String(error)));
