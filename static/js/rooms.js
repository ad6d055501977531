// The rooms the user has in the sidebar and what the page holds of each: messages by seq, who is
// present, who types, unread counts. No DOM here: the views read it.

import { nameOf } from "./people.js";

export const DM_PREFIX = "dm:";

export function newRoom(id, { name = id, kind = "public", peer = null, role = null } = {}) {
  return {
    id,
    name,
    kind, // "public" | "private" | "dm"
    peer, // for a DM: {username, displayName} of the other user
    role, // owner | admin | member | null
    joined: false, // the current connection has a join_room ack for it
    everJoined: false, // some connection had one: later joins catch up with sinceSeq
    messages: new Map(), // seq -> message
    ids: new Set(),
    lines: [], // join/leave and invitation lines: {key, afterSeq, ts, text}
    leftLines: new Map(), // username -> their latest "left" line, taken back if they return at once
    hasOlder: false,
    loadingOlder: false,
    holeTimer: 0, // a pending fill of a hole in the seqs (joining.js)
    members: new Map(), // username -> {status, displayName}
    typers: new Set(),
    unread: 0,
    lastRead: 0, // our read mark (mark_read)
    reads: new Map(), // username -> seq they read up to (read receipts)
    change: 0, // the highest change number seen (edits, deletions, reactions): sinceChange
    mutedUntil: null,
    receipts: true, // members see each other's read marks
    retentionDays: null, // days the room keeps messages; null: the server's default (config.retentionDays)
    bans: null, // owner and admins: the bans in force (moderation.js); null until read
    mutes: new Map(), // owner and admins: username -> the mute in force
  };
}

/** A room's options as the server states them: `room` of join_room and set_room_options, room_updated. */
export function applyRoomOptions(room, options) {
  if (!options) return;
  if (typeof options.receipts === "boolean") room.receipts = options.receipts;
  if (options.receipts === false) room.reads.clear();
  if ("retentionDays" in options) room.retentionDays = options.retentionDays;
}

/** What the sidebar and the header call a room: a DM by the other user's name. */
export function roomLabel(room) {
  if (room.kind === "dm") return room.peer ? room.peer.displayName || room.peer.username : "direct message";
  return room.name || room.id;
}

/** The highest seq up to which the room's messages are held without a gap (from the oldest held). */
export function contiguousSeq(room) {
  if (room.messages.size === 0) return 0;
  const seqs = [...room.messages.keys()].sort((a, b) => a - b);
  let seq = seqs[0];
  for (const next of seqs) {
    if (next > seq + 1) break;
    seq = next;
  }
  return seq;
}

export function firstSeq(room) {
  let first = null;
  for (const seq of room.messages.keys()) if (first === null || seq < first) first = seq;
  return first;
}

export function lastSeq(room) {
  let last = 0;
  for (const seq of room.messages.keys()) if (seq > last) last = seq;
  return last;
}

function seeChange(room, change) {
  if (Number.isInteger(change) && change > room.change) room.change = change;
}

/**
 * Keep messages of this room by seq; a message already held (same id) is replaced by a newer state of it
 * (an edit, a deletion, reactions). Returns the messages that were new.
 */
export function holdMessages(room, list) {
  const added = [];
  for (const msg of Array.isArray(list) ? list : []) {
    if (!msg || msg.room !== room.id || !Number.isInteger(msg.seq)) continue;
    seeChange(room, msg.change);
    const previous = room.messages.get(msg.seq);
    if (previous?.id === msg.id) {
      if ((msg.change ?? 0) >= (previous.change ?? 0)) room.messages.set(msg.seq, msg);
      continue;
    }
    if (previous) room.ids.delete(previous.id);
    room.messages.set(msg.seq, msg);
    room.ids.add(msg.id);
    room.typers.delete(msg.user);
    added.push(msg);
  }
  return added;
}

export function dropMessages(room) {
  room.messages.clear();
  room.ids.clear();
  room.lines = [];
  room.leftLines.clear();
}

let lineCounter = 0;

/**
 * A line that is not a message ("bob joined"), shown after the newest message held now. `text` is a
 * string or a function giving it at each render (names that a profile answers later). Returns the line.
 */
export function addLine(room, text) {
  lineCounter += 1;
  const line = { key: `l${lineCounter}`, afterSeq: lastSeq(room), ts: Date.now(), text };
  room.lines.push(line);
  if (room.lines.length > 200) room.lines.shift();
  return line;
}

export const lineText = (line) => (typeof line.text === "function" ? line.text() : line.text);

// A connection that drops and comes back within this long is a blip, not a leave and a join.
const BLIP_MS = 10_000;

/** A user left the room: a "left" line, remembered so that a quick return can take it back. */
export function addLeftLine(room, user, text) {
  room.leftLines.set(user, addLine(room, text));
}

/**
 * A user joined the room. If they left it less than BLIP_MS ago, the "left" line goes and no line is
 * added (their connection blipped); otherwise a "joined" line. Returns whether a line was added.
 */
export function addJoinedLine(room, user, text, now = Date.now()) {
  const left = room.leftLines.get(user);
  room.leftLines.delete(user);
  if (left && now - left.ts < BLIP_MS && room.lines.includes(left)) {
    room.lines.splice(room.lines.indexOf(left), 1);
    return false;
  }
  addLine(room, text);
  return true;
}

/** A user's display name: one the payload carries, else the one of their profile (people.js). */
export const displayName = (msgOrMember, username) =>
  msgOrMember?.displayName || nameOf(username || msgOrMember?.user || msgOrMember?.username);

/** A `reaction` event: the message's whole reaction list after the change. */
export function applyReaction(room, { id, seq, reactions, change }) {
  const held = room.messages.get(seq);
  seeChange(room, change);
  if (!held || held.id !== id || (held.change ?? 0) > change) return false;
  room.messages.set(seq, { ...held, reactions, change });
  return true;
}

/** A reply that just arrived (live, not from a history page) adds one to its parent's replyCount. */
export function countReply(room, reply) {
  const parent = reply.replyTo && room.messages.get(reply.replyTo.seq);
  if (!parent || parent.id !== reply.replyTo.id) return;
  room.messages.set(parent.seq, { ...parent, replyCount: (parent.replyCount ?? 0) + 1 });
}

export function lastOwnMessage(room, user) {
  let found = null;
  for (const msg of room.messages.values()) if (msg.user === user && !msg.deleted && (!found || msg.seq > found.seq)) found = msg;
  return found;
}
