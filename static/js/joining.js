// Joining rooms (and catching up after a reconnect), opening and leaving them in the page, read marks, and
// the history pages: older ones on scroll, missing seqs filled after a hole.

import { setBanner, showError } from "./notices.js";
import { addRoom, remember } from "./roomlist.js";
import { applyRoomOptions, contiguousSeq, dropMessages, firstSeq, holdMessages, lastSeq } from "./rooms.js";
import { app, command, invalidate, me } from "./state.js";

// A hole in a room's seqs (a later message arrived first) is waited for this long, then filled from history.
const HOLE_WAIT_MS = 1_500;
const LAST_ROOM_KEY = "chatio.openRoom";

// --- joining -----------------------------------------------------------------------------------------------

/** Apply a join ack (join_room, accept_invite, open_dm); returns how many new messages it brought. */
export function applyJoin(room, ack, catchUp) {
  room.joined = true;
  room.everJoined = true;
  if (ack.room && room.kind !== "dm") {
    room.name = ack.room.name || room.name;
    room.kind = ack.room.public === false ? "private" : "public";
  }
  if (room.kind !== "dm" && "role" in ack) room.role = ack.role; // owner, admin, member or null
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
  applyRoomOptions(room, ack.room);
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
  const ack = await command("join_room", payload);
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

export function dropRoom(id) {
  app.rooms.delete(id);
  remember((kept) => {
    kept.joined = kept.joined.filter((joined) => joined !== id);
    kept.hidden.push(id);
  });
  if (app.openId === id) openRoom([...app.rooms.keys()][0] ?? null);
  invalidate("sidebar", "conversation", "members", "header");
}

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

// --- history ---------------------------------------------------------------------------------------------

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

/** docs/protocol.md, "Delivery", step 3: a hole still open after HOLE_WAIT_MS is filled from history. */
export function watchHoles(room) {
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
