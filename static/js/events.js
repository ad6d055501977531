// What the server tells: each Socket.IO event updates the rooms held and asks the views to re-render.

import { showError, showInfo } from "./notices.js";
import { PAST } from "./commands.js";
import { nameSoon } from "./people.js";
import { joinRoom, markReadSoon, openRoom, watchHoles } from "./joining.js";
import { addRoom, loadDms, loadOnlineSoon, roomPeer, setMemberStatus } from "./roomlist.js";
import {
  addJoinedLine,
  addLeftLine,
  addLine,
  applyReaction,
  applyRoomOptions,
  countReply,
  displayName,
  holdMessages,
  lastSeq,
  roomLabel,
} from "./rooms.js";
import { app, invalidate, me } from "./state.js";

const roomLabelOf = (room) => (room.kind === "dm" ? "this conversation" : room.name || room.id);
// What to call a room named by id in an event: its name where the page holds the room.
const roomNameOf = (id) => (app.rooms.has(id) ? roomLabel(app.rooms.get(id)) : id);
// A user named by an event that carries no display name: the room's member entry, else their profile.
const personIn = (room, user) => displayName(room?.members.get(user), user);

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
    applyRoomOptions(room, update);
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
    // In a DM both people are always its members: a line would only echo a connection of the other one.
    if (room.kind !== "dm") addJoinedLine(room, user, `${displayName({ displayName: name }, user)} joined`);
    invalidate("members", "conversation");
  });

  conn.on("user_left", ({ room: id, user }) => {
    const room = app.rooms.get(id);
    if (!room || user === me()) return;
    const member = room.members.get(user);
    room.members.delete(user);
    room.typers.delete(user);
    if (room.kind !== "dm") addLeftLine(room, user, `${displayName(member, user)} left`);
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

  conn.on("invited", async (invitation) => {
    app.invitations.set(invitation.room, invitation);
    invalidate("sidebar");
    showInfo(`${await nameSoon(invitation.by)} invited you to ${roomNameOf(invitation.room)}.`);
  });

  conn.on("user_invited", ({ room: id, user, by }) => {
    const room = app.rooms.get(id);
    if (!room) return;
    addLine(room, () => `${personIn(room, by)} invited ${personIn(room, user)}`);
    invalidate("conversation");
  });

  conn.on("invite_declined", async ({ room, user }) => {
    showInfo(`${await nameSoon(user)} declined your invitation to ${roomNameOf(room)}.`);
  });

  conn.on("dm_opened", async ({ room: id, user }) => {
    const room = addRoom(id, { kind: "dm", peer: roomPeer(id, user) });
    if (!room.joined) await joinRoom(room);
    await loadDms();
  });

  conn.on("command_error", ({ event, error }) => showError(error, event));
}
