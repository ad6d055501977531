// Messages: sending (a retry keeps its clientMsgId), editing, deleting, reactions, and typing.

import { newClientMsgId } from "./dom.js";
import { showError } from "./notices.js";
import { countReply, holdMessages } from "./rooms.js";
import { app, command, invalidate, me } from "./state.js";

const TYPING_IDLE_MS = 2_000; // typing_stop after this long without a keystroke

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

export function discardPending(room, clientMsgId) {
  room.pending?.delete(clientMsgId);
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
