// What the user asks of rooms beyond reading and writing: leave, create, invite (accept, decline), direct
// messages, their status, and a room's roles (moderation.js kicks, bans and mutes; settings.js sets the
// room's options).

import { showError, showInfo } from "./notices.js";
import { addRoom, loadDms, roomPeer, setMemberStatus } from "./roomlist.js";
import { applyJoin, dropRoom, joinRoom, openRoom } from "./joining.js";
import { app, command, invalidate, me } from "./state.js";

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

/** set_role (the owner only): make a user an admin of the room, or a plain member again. */
export async function setRole(room, user, role) {
  const ack = await command("set_role", { room: room.id, user, role });
  if (!ack.ok) showError(ack.error, "set_role");
  else showInfo(`${user} is now ${role === "admin" ? "an admin" : "a member"} of ${room.name || room.id}.`);
}

export const PAST = { kick: "removed from the room", ban: "banned", unban: "unbanned", mute: "muted", unmute: "unmuted" };
