// What the user does in rooms and what the server tells about them: joining (and catching up after a
// reconnect), leaving, creating, inviting, direct messages, sending, typing, history, live events.

import { newClientMsgId } from "./dom.js";
import { rememberName } from "./people.js";
import { setBanner, showError, showInfo } from "./notices.js";
import {
  DM_PREFIX,
  addLine,
  applyReaction,
  countReply,
  contiguousSeq,
  displayName,
  dropMessages,
  firstSeq,
  holdMessages,
  lastSeq,
  newRoom,
} from "./rooms.js";
import { app, invalidate, me } from "./state.js";

const TYPING_IDLE_MS = 2_000; // typing_stop after this long without a keystroke
// A hole in a room's seqs (a later message arrived first) is waited for this long, then filled from history.
const HOLE_WAIT_MS = 1_500;
const LAST_ROOM_KEY = "chatio.openRoom";
const command = (event, payload) => app.conn.command(event, payload);

// --- the room list ---------------------------------------------------------------------------------------

/** Public rooms the user joined are remembered per user in this browser; the server knows the rest. */
function listKey() {
  return `chatio.rooms.${app.auth.user.id}`;
}

function remembered() {
  try {
    const kept = JSON.parse(localStorage.getItem(listKey()) || "null");
    return { joined: kept?.joined ?? [], hidden: kept?.hidden ?? [] };
  } catch {
    return { joined: [], hidden: [] };
  }
}

function remember(update) {
  const kept = remembered();
  update(kept);
  kept.joined = [...new Set(kept.joined)];
  kept.hidden = [...new Set(kept.hidden)];
  try {
    localStorage.setItem(listKey(), JSON.stringify(kept));
  } catch {
    // Without storage the list is rebuilt from the server's rooms on the next visit.
  }
}

export function addRoom(id, fields = {}) {
  let room = app.rooms.get(id);
  if (!room) {
    room = newRoom(id, { kind: id.startsWith(DM_PREFIX) ? "dm" : "public", ...fields });
    app.rooms.set(id, room);
  } else {
    for (const [key, value] of Object.entries(fields)) if (value !== undefined && value !== null) room[key] = value;
  }
  if (room.kind !== "dm") remember((kept) => {
    kept.joined.push(id);
    kept.hidden = kept.hidden.filter((hidden) => hidden !== id);
  });
  invalidate("sidebar");
  return room;
}

function dropRoom(id) {
  app.rooms.delete(id);
  remember((kept) => {
    kept.joined = kept.joined.filter((joined) => joined !== id);
    kept.hidden.push(id);
  });
  if (app.openId === id) openRoom([...app.rooms.keys()][0] ?? null);
  invalidate("sidebar", "conversation", "members", "header");
}

async function get(path, fallback) {
  try {
    return await app.auth.api("GET", path);
  } catch (err) {
    showError(err.error, path);
    return fallback;
  }
}

/** The sidebar's rooms: the user's rooms on the server, their DMs, the public rooms joined here. */
export async function loadRoomList() {
  const kept = remembered();
  const hidden = new Set(kept.hidden);
  const [mine] = await Promise.all([get("/rooms/mine", { rooms: [] }), loadDms()]);
  for (const room of mine.rooms) {
    if (hidden.has(room.id)) continue;
    const held = addRoom(room.id, { name: room.name, kind: room.public ? "public" : "private", role: room.role });
    if (Number.isInteger(room.unread) && !held.joined) held.unread = room.unread;
  }
  for (const id of kept.joined) if (!app.rooms.has(id)) addRoom(id);
  await loadInvitations();
  // A first visit without a room in the address starts in the lobby.
  const addressed = new URLSearchParams(location.hash.slice(1)).get("room");
  if (app.rooms.size === 0 && kept.hidden.length === 0 && !addressed) addRoom("lobby");
}

/** The direct-message rooms, with the user at the other end (their display name) for each. */
async function loadDms() {
  const found = await get("/dms", { dms: [] });
  for (const dm of found.dms) {
    addRoom(dm.room, { kind: "dm", peer: dm.user });
    rememberName(dm.user.username, dm.user.displayName);
  }
  invalidate("header", "members");
}

// Who is online anywhere on the server (GET /api/chat/users?online=true), refreshed on presence changes.
const ONLINE_PAGE = 50;
let onlineTimer = 0;

export async function loadOnline() {
  const found = await get(`/users?online=true&limit=${ONLINE_PAGE}`, null);
  if (!found) return;
  app.online = found.users.filter((user) => user.username !== me());
  for (const user of app.online) rememberName(user.username, user.displayName);
  invalidate("sidebar");
}

function loadOnlineSoon() {
  clearTimeout(onlineTimer);
  onlineTimer = setTimeout(loadOnline, 1_000);
}

export async function loadInvitations() {
  const found = await get("/invitations", { invitations: [] });
  app.invitations = new Map(found.invitations.map((invitation) => [invitation.room, invitation]));
  invalidate("sidebar");
}

// --- joining -----------------------------------------------------------------------------------------------

/** Apply a join ack (join_room, accept_invite, open_dm); returns how many new messages it brought. */
function applyJoin(room, ack, catchUp) {
  room.joined = true;
  room.everJoined = true;
  if (ack.room && room.kind !== "dm") {
    room.name = ack.room.name || room.name;
    room.kind = ack.room.public === false ? "private" : "public";
  }
  room.members = new Map((ack.members || []).map((m) => [m.user, { status: m.status, displayName: m.displayName }]));
  room.typers.clear();
  const fresh = !catchUp || ack.reset === true;
  if (fresh) dropMessages(room);
  const added = holdMessages(room, ack.history);
  if (!fresh) holdMessages(room, ack.changes); // older messages edited, deleted or reacted to meanwhile
  if (Number.isInteger(ack.change) && ack.change > room.change) room.change = ack.change;
  if (fresh) room.hasOlder = (firstSeq(room) ?? 1) > 1;
  if (Number.isInteger(ack.lastRead)) room.lastRead = Math.max(room.lastRead, ack.lastRead);
  if (Number.isInteger(ack.unread)) room.unread = ack.unread;
  else if (catchUp && room.id !== app.openId) room.unread += added.filter((m) => m.user !== me()).length;
  if (typeof ack.room?.receipts === "boolean") room.receipts = ack.room.receipts;
  if (ack.room?.receipts === false) room.reads.clear();
  invalidate("sidebar", "conversation", "members", "header");
  markReadSoon();
  return { added: added.length, reset: catchUp && ack.reset === true };
}

/** join_room; after a reconnect with sinceSeq = the highest seq held without a gap (catch-up). */
export async function joinRoom(room) {
  const catchUp = room.everJoined;
  const payload = { room: room.id };
  if (catchUp) {
    payload.sinceSeq = contiguousSeq(room);
    payload.sinceChange = room.change;
  }
  let ack = await command("join_room", payload);
  // Joining again is harmless (the same answer): one more try when no answer came.
  if (!ack.ok && ack.error?.code === "timeout" && app.conn?.connected) ack = await command("join_room", payload);
  if (!ack.ok) {
    showError(ack.error, `join ${room.id}`);
    if (!catchUp) dropRoom(room.id);
    return { added: 0, reset: false };
  }
  return applyJoin(room, ack, catchUp);
}

/** After every (re)connect: join every room of the list, then say what was caught up. */
export async function joinAll({ onlyNew = false } = {}) {
  let rooms = [...app.rooms.values()].slice(0, app.config.roomsPerConnection);
  if (onlyNew) rooms = rooms.filter((room) => !room.joined);
  if (rooms.length === 0) return;
  const catchUp = !onlyNew && rooms.some((room) => room.everJoined);
  const results = await Promise.all(rooms.map((room) => joinRoom(room)));
  if (catchUp) {
    const missed = results.reduce((sum, r) => sum + r.added, 0);
    if (results.some((r) => r.reset)) setBanner("Back online. You missed many messages; showing the latest ones.", "ok");
    else setBanner(missed ? `Back online. ${missed} missed message${missed === 1 ? "" : "s"} loaded.` : "Back online.", "ok");
    setTimeout(() => document.getElementById("notice").dataset.kind === "ok" && setBanner(""), 5_000);
  }
  // A new connection starts online: restore the status the user chose.
  if (app.myStatus !== "online" && !onlyNew) {
    const ack = await command("user_status", { status: app.myStatus });
    if (!ack.ok) showError(ack.error, "status");
  }
}

export function markAllLeft() {
  for (const room of app.rooms.values()) {
    room.joined = false;
    room.typers.clear();
  }
  invalidate("sidebar", "conversation", "members", "header");
}

// --- opening and leaving rooms --------------------------------------------------------------------------

/** Show a room (joining it first when it is not in the list); `focusSeq` scrolls to one message. */
export async function openRoom(id, { focusSeq = null } = {}) {
  if (id && !app.rooms.has(id)) {
    const room = addRoom(id);
    if (app.conn?.connected) await joinRoom(room);
    if (!app.rooms.has(id)) return;
  }
  // The room left behind was seen up to its newest message; so is the one opened.
  const left = app.openId && app.openId !== id ? app.rooms.get(app.openId) : null;
  if (left) markRead(left);
  app.openId = id;
  app.focusSeq = focusSeq;
  const room = id ? app.rooms.get(id) : null;
  if (room) room.unread = 0;
  try {
    if (id) sessionStorage.setItem(LAST_ROOM_KEY, id);
  } catch {
    // Then a reload opens the first room instead.
  }
  const hash = id ? `#room=${encodeURIComponent(id)}` : "";
  if (location.hash !== hash && !(focusSeq && location.hash.startsWith(hash))) history.replaceState(null, "", hash || location.pathname);
  invalidate("sidebar", "conversation", "members", "header");
  if (room) markRead(room);
  if (room && focusSeq) await loadUntil(room, focusSeq);
}

// --- read marks ------------------------------------------------------------------------------------------

const READ_DELAY_MS = 400;
let readTimer = 0;

/** The open room, while the page is visible, is read up to its newest message (mark_read). */
export function markReadSoon() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => markRead(app.openId ? app.rooms.get(app.openId) : null), READ_DELAY_MS);
}

async function markRead(room) {
  if (!room || document.hidden || !room.joined) return;
  const seq = lastSeq(room);
  if (seq <= room.lastRead) {
    if (room.unread) {
      room.unread = 0;
      invalidate("sidebar");
    }
    return;
  }
  room.unread = 0;
  invalidate("sidebar");
  const ack = await command("mark_read", { room: room.id, seq });
  if (ack.ok) room.lastRead = Math.max(room.lastRead, ack.lastRead ?? seq);
}

document.addEventListener("visibilitychange", () => {
  const room = app.openId ? app.rooms.get(app.openId) : null;
  if (room && !document.hidden) markReadSoon();
});

/** The room a reload should show: the address's #room=..., else the one open before. */
export function roomToOpen() {
  const wanted = new URLSearchParams(location.hash.slice(1));
  if (wanted.get("room")) return { id: wanted.get("room"), focusSeq: Number(wanted.get("seq")) || null };
  let last = null;
  try {
    last = sessionStorage.getItem(LAST_ROOM_KEY);
  } catch {
    last = null;
  }
  if (last && app.rooms.has(last)) return { id: last, focusSeq: null };
  return { id: [...app.rooms.keys()][0] ?? null, focusSeq: null };
}

export async function leaveRoom(id) {
  const ack = await command("leave_room", { room: id });
  if (!ack.ok && ack.error?.code !== "not_in_room") {
    showError(ack.error, "leave");
    return;
  }
  dropRoom(id);
}

export async function createRoom(name, isPrivate) {
  const ack = await command("create_room", { room: name, public: !isPrivate });
  if (!ack.ok) return ack.error;
  const room = addRoom(ack.room?.id || name, { kind: isPrivate ? "private" : "public", role: "owner" });
  await joinRoom(room);
  await openRoom(room.id);
  return null;
}

export async function invite(roomId, username) {
  const ack = await command("invite", { room: roomId, user: username });
  if (!ack.ok) return ack.error;
  showInfo(`Invitation sent to ${username}.`);
  return null;
}

export async function acceptInvite(roomId) {
  const ack = await command("accept_invite", { room: roomId });
  app.invitations.delete(roomId);
  invalidate("sidebar");
  if (!ack.ok) {
    showError(ack.error, "accept");
    return;
  }
  const room = addRoom(roomId, { kind: "private", role: "member" });
  applyJoin(room, ack, false);
  await openRoom(roomId);
}

export async function declineInvite(roomId) {
  const ack = await command("decline_invite", { room: roomId });
  app.invitations.delete(roomId);
  invalidate("sidebar");
  if (!ack.ok) showError(ack.error, "decline");
}

export async function openDm(username) {
  const ack = await command("open_dm", { user: username });
  if (!ack.ok) {
    showError(ack.error, "direct message");
    return;
  }
  const room = addRoom(ack.room.id, { kind: "dm", peer: roomPeer(ack.room.id, ack.user) });
  applyJoin(room, ack, false);
  await openRoom(room.id);
  await loadDms();
}

/** Who is at the other end of a DM, as far as known before GET /api/chat/dms answers. */
const roomLabelOf = (room) => (room.kind === "dm" ? "this conversation" : room.name || room.id);

function roomPeer(id, username) {
  return app.rooms.get(id)?.peer ?? { username };
}

export async function setStatus(status) {
  const previous = app.myStatus;
  app.myStatus = status; // a reconnect meanwhile restores what the user chose
  const ack = await command("user_status", { status });
  if (!ack.ok) {
    app.myStatus = previous;
    showError(ack.error, "status");
  }
  setMemberStatus(me(), app.myStatus);
  invalidate("header");
}

// --- messages ----------------------------------------------------------------------------------------------

/** Send with a clientMsgId; a retry uses the same id, so the server stores the message once. */
export async function sendMessage(room, text, clientMsgId = newClientMsgId(), replyTo = null) {
  room.pending ??= new Map();
  room.pending.set(clientMsgId, { clientMsgId, text, user: me(), failed: null, replyTo });
  invalidate("conversation");
  stopTyping(room);
  const payload = { room: room.id, text, clientMsgId };
  if (replyTo) payload.replyTo = replyTo;
  const ack = await command("send_message", payload);
  if (ack.ok) {
    room.pending.delete(clientMsgId);
    for (const reply of holdMessages(room, [ack.message])) countReply(room, reply);
  } else {
    room.pending.get(clientMsgId).failed = ack.error;
    showError(ack.error, "send");
  }
  invalidate("conversation");
}

/** edit_message, delete_message, react / unreact: the ack carries the message in its new state. */
async function changeMessage(room, event, payload) {
  const ack = await command(event, { room: room.id, ...payload });
  if (!ack.ok) {
    showError(ack.error, event);
    return false;
  }
  holdMessages(room, [ack.message]);
  invalidate("conversation");
  return true;
}

export const editMessage = (room, msg, text) => changeMessage(room, "edit_message", { id: msg.id, text });
export const deleteMessage = (room, msg) => changeMessage(room, "delete_message", { id: msg.id });

export function toggleReaction(room, msg, emoji) {
  const mine = (msg.reactions || []).some((r) => r.emoji === emoji && r.users.includes(me()));
  return changeMessage(room, mine ? "unreact" : "react", { id: msg.id, emoji });
}

/** kick, ban, mute by a room's owner or admins; the ack's `action` is the audit entry. */
export async function moderate(room, action, user, extra = {}) {
  const ack = await command(action, { room: room.id, user, ...extra });
  if (!ack.ok) showError(ack.error, action);
  else showInfo(`${user}: ${PAST[action] || action}.`);
}

/** set_role (the owner only): make a user an admin of the room, or a plain member again. */
export async function setRole(room, user, role) {
  const ack = await command("set_role", { room: room.id, user, role });
  if (!ack.ok) showError(ack.error, "set_role");
  else showInfo(`${user} is now ${role === "admin" ? "an admin" : "a member"} of ${room.name || room.id}.`);
}

/** set_room_options: read receipts on or off (owner and admins). */
export async function setReceipts(room, receipts) {
  const ack = await command("set_room_options", { room: room.id, receipts });
  if (!ack.ok) showError(ack.error, "set_room_options");
  else room.receipts = ack.room?.receipts ?? receipts;
  invalidate("members", "conversation");
}

const PAST = { kick: "removed from the room", ban: "banned", unban: "unbanned", mute: "muted", unmute: "unmuted" };

export function discardPending(room, clientMsgId) {
  room.pending?.delete(clientMsgId);
  invalidate("conversation");
}

/** One page of older messages (keyset: before the oldest seq held). */
export async function loadOlder(room) {
  const first = firstSeq(room);
  if (first === null || room.loadingOlder || !room.hasOlder) return false;
  room.loadingOlder = true;
  invalidate("conversation");
  const ack = await command("history", { room: room.id, before: first, limit: app.config.historyPageSize });
  room.loadingOlder = false;
  if (!ack.ok) {
    showError(ack.error, "history");
    invalidate("conversation");
    return false;
  }
  holdMessages(room, ack.messages);
  room.hasOlder = Boolean(ack.hasMore);
  invalidate("conversation");
  return true;
}

/** Page back until `seq` is held (a search result), at most a few pages. */
async function loadUntil(room, seq) {
  for (let page = 0; page < 20 && !room.messages.has(seq) && room.hasOlder; page += 1) {
    if (!(await loadOlder(room))) break;
  }
  invalidate("conversation");
}

// --- typing ------------------------------------------------------------------------------------------------

const typing = { room: null, active: false, lastStartAt: 0, idleTimer: 0 };

export function typingInput(room, empty) {
  if (!room?.joined) return;
  clearTimeout(typing.idleTimer);
  if (typing.active && typing.room !== room) stopTyping(typing.room);
  if (empty) {
    stopTyping(room);
    return;
  }
  const now = Date.now();
  // Refresh well before the server's typing timeout expires the state.
  if (!typing.active || now - typing.lastStartAt > (app.config.typingTimeoutSeconds * 1000) / 2) {
    typing.active = true;
    typing.room = room;
    typing.lastStartAt = now;
    command("typing_start", { room: room.id }).then((ack) => ack.ok || showError(ack.error, "typing"));
  }
  typing.idleTimer = setTimeout(() => stopTyping(room), TYPING_IDLE_MS);
}

export function stopTyping(room) {
  clearTimeout(typing.idleTimer);
  if (!typing.active || typing.room !== room) return;
  typing.active = false;
  if (room.joined) command("typing_stop", { room: room.id });
}

// --- what the server tells -------------------------------------------------------------------------------

function setMemberStatus(user, status) {
  for (const room of app.rooms.values()) {
    const member = room.members.get(user);
    if (!member) continue;
    if (status === "offline") {
      room.members.delete(user);
      room.typers.delete(user);
    } else {
      member.status = status;
    }
  }
  invalidate("members", "conversation");
}

/** docs/protocol.md, "Delivery", step 3: a hole still open after HOLE_WAIT_MS is filled from history. */
function watchHoles(room) {
  if (room.holeTimer || lastSeq(room) <= contiguousSeq(room)) return;
  room.holeTimer = setTimeout(() => fillHoles(room), HOLE_WAIT_MS);
}

async function fillHoles(room) {
  room.holeTimer = 0;
  while (room.joined && lastSeq(room) > contiguousSeq(room)) {
    const after = contiguousSeq(room);
    const ack = await command("history", { room: room.id, after, limit: app.config.historyPageSize });
    if (!ack.ok) break;
    const added = holdMessages(room, ack.messages);
    invalidate("conversation", "sidebar");
    if (!added.length || !ack.hasMore) break; // nothing new: retention removed the missing seqs
  }
}

export function wireEvents(conn) {
  conn.on("message", (msg) => {
    const room = app.rooms.get(msg?.room);
    if (!room) return;
    const added = holdMessages(room, [msg]);
    for (const reply of added) countReply(room, reply);
    if (added.length && msg.user !== me() && (room.id !== app.openId || document.hidden)) room.unread += 1;
    if (room.id === app.openId) markReadSoon();
    invalidate("conversation", "sidebar");
    watchHoles(room);
  });

  for (const event of ["message_updated", "message_deleted"]) {
    conn.on(event, (msg) => {
      const room = app.rooms.get(msg?.room);
      if (room && holdMessages(room, [msg])) invalidate("conversation");
    });
  }

  conn.on("reaction", (change) => {
    const room = app.rooms.get(change?.room);
    if (room && applyReaction(room, change)) invalidate("conversation");
  });

  conn.on("read", ({ room: id, user, seq }) => {
    const room = app.rooms.get(id);
    if (!room) return;
    if (user === me()) {
      room.lastRead = Math.max(room.lastRead, seq);
      if (seq >= lastSeq(room)) room.unread = 0;
      invalidate("sidebar");
    } else {
      room.reads.set(user, Math.max(room.reads.get(user) ?? 0, seq));
      invalidate("conversation");
    }
  });

  conn.on("room_updated", (update) => {
    const room = app.rooms.get(update?.id);
    if (!room) return;
    if (room.kind !== "dm") room.kind = update.public === false ? "private" : "public";
    if (typeof update.receipts === "boolean") room.receipts = update.receipts;
    if (update.receipts === false) room.reads.clear();
    invalidate("header", "members", "conversation");
  });

  conn.on("moderated", ({ room: id, action, user, by, reason, until }) => {
    const room = app.rooms.get(id);
    if (!room) return;
    const why = reason ? ` (${reason})` : "";
    const till = until ? ` until ${new Date(until).toLocaleString()}` : "";
    if (user === me()) {
      if (action === "mute") room.mutedUntil = until ?? Infinity;
      if (action === "unmute") room.mutedUntil = null;
      if (action === "kick" || action === "ban") {
        app.rooms.delete(id);
        if (app.openId === id) openRoom([...app.rooms.keys()][0] ?? null);
      }
      showInfo(`${by} ${action === "kick" ? "removed you from" : `${PAST[action] || action} you in`} ${roomLabelOf(room)}${till}${why}.`);
    } else {
      if (action === "kick" || action === "ban") room.members.delete(user);
      addLine(room, `${user} was ${PAST[action] || action} by ${by}${why}`);
    }
    invalidate("sidebar", "conversation", "members", "header");
  });

  conn.on("user_joined", ({ room: id, user, displayName: name }) => {
    if (!app.online.some((person) => person.username === user) && user !== me()) loadOnlineSoon();
    const room = app.rooms.get(id);
    if (!room || user === me()) return;
    if (!room.members.has(user)) room.members.set(user, { status: "online", displayName: name });
    addLine(room, `${displayName({ displayName: name }, user)} joined`);
    invalidate("members", "conversation");
  });

  conn.on("user_left", ({ room: id, user }) => {
    const room = app.rooms.get(id);
    if (!room || user === me()) return;
    const member = room.members.get(user);
    room.members.delete(user);
    room.typers.delete(user);
    addLine(room, `${displayName(member, user)} left`);
    invalidate("members", "conversation");
  });

  conn.on("typing", ({ room: id, user, typing: on }) => {
    const room = app.rooms.get(id);
    if (!room || user === me()) return;
    if (on) room.typers.add(user);
    else room.typers.delete(user);
    invalidate("conversation");
  });

  conn.on("presence", ({ user, status }) => {
    const known = app.online.find((person) => person.username === user);
    if (known && status !== "offline") known.status = status;
    else loadOnlineSoon();
    if (user === me() && status !== "offline") {
      app.myStatus = status;
      invalidate("header");
    }
    setMemberStatus(user, status);
  });

  conn.on("invited", (invitation) => {
    app.invitations.set(invitation.room, invitation);
    showInfo(`${invitation.by} invited you to ${invitation.room}.`);
    invalidate("sidebar");
  });

  conn.on("user_invited", ({ room: id, user, by }) => {
    const room = app.rooms.get(id);
    if (!room) return;
    addLine(room, `${by} invited ${user}`);
    invalidate("conversation");
  });

  conn.on("invite_declined", ({ room, user }) => showInfo(`${user} declined your invitation to ${room}.`));

  conn.on("dm_opened", async ({ room: id, user }) => {
    const room = addRoom(id, { kind: "dm", peer: roomPeer(id, user) });
    if (!room.joined) await joinRoom(room);
    await loadDms();
  });

  conn.on("command_error", ({ event, error }) => showError(error, event));
}
