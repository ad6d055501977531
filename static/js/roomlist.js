// The room list: which rooms the sidebar holds (the server's, the DMs, the public rooms joined in this
// browser, remembered per user), the pending invitations and who is online.

import { rememberName } from "./people.js";
import { showError } from "./notices.js";
import { DM_PREFIX, newRoom } from "./rooms.js";
import { app, invalidate, me } from "./state.js";

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

export function remember(update) {
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
export async function loadDms() {
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

export function loadOnlineSoon() {
  clearTimeout(onlineTimer);
  onlineTimer = setTimeout(loadOnline, 1_000);
}

export async function loadInvitations() {
  const found = await get("/invitations", { invitations: [] });
  app.invitations = new Map(found.invitations.map((invitation) => [invitation.room, invitation]));
  invalidate("sidebar");
}

/** Who is at the other end of a DM, as far as known before GET /api/chat/dms answers. */
export function roomPeer(id, username) {
  return app.rooms.get(id)?.peer ?? { username };
}

export function setMemberStatus(user, status) {
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
