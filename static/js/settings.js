// A room's settings, for its owner and admins: read receipts shared or private, and how long the room
// keeps its messages (set_room_options {room, receipts, retentionDays}). One dialog shows the current
// values; the server's refusal is shown in it, in plain words.

import { $ } from "./dom.js";
import { formMessage, openDialog } from "./dialogs.js";
import { plainError, showInfo } from "./notices.js";
import { applyRoomOptions, roomLabel } from "./rooms.js";
import { app, command, invalidate, openRoom } from "./state.js";

const days = (n) => `${n} day${n === 1 ? "" : "s"}`;

/** How long messages stay, in words: a room's own retentionDays (null: the server's default). */
export function keptFor(room) {
  const own = room?.retentionDays;
  const chosen = own === null || own === undefined ? app.config.retentionDays : own;
  return chosen ? `Messages are kept ${days(chosen)}` : "Messages are kept forever";
}

let editing = null; // the room whose settings the dialog shows

function showMode() {
  const custom = $("settings-retention").value === "days";
  $("settings-days-field").hidden = !custom;
}

function open() {
  const room = openRoom();
  if (!room) return;
  editing = room;
  $("settings-room").textContent = roomLabel(room);
  $("settings-receipts").checked = room.receipts !== false;
  const serverDays = app.config.retentionDays;
  $("settings-default").textContent = `As the server does (${serverDays ? days(serverDays) : "forever"})`;
  const own = room.retentionDays;
  $("settings-retention").value = own === null || own === undefined ? "default" : own === 0 ? "forever" : "days";
  $("settings-days").value = own ? String(own) : "";
  showMode();
  formMessage($("settings-error"), "");
  openDialog($("settings-dialog"), $("settings-receipts"));
}

async function save(event) {
  event.preventDefault();
  const room = editing;
  if (!room) return;
  const mode = $("settings-retention").value;
  let retentionDays = mode === "default" ? null : 0;
  if (mode === "days") {
    const typed = $("settings-days").value.trim();
    if (!/^\d+$/.test(typed) || Number(typed) < 1) {
      formMessage($("settings-error"), "Days: a whole number, 1 or more.");
      $("settings-days").focus();
      return;
    }
    retentionDays = Number(typed);
  }
  const receipts = $("settings-receipts").checked;
  const ack = await command("set_room_options", { room: room.id, receipts, retentionDays });
  if (!ack.ok) {
    formMessage($("settings-error"), plainError(ack.error));
    return;
  }
  applyRoomOptions(room, ack.room);
  invalidate("members", "conversation");
  $("settings-dialog").close();
  showInfo(`Settings of ${roomLabel(room)} saved.`);
}

export function setupSettings() {
  $("settings-btn").addEventListener("click", open);
  $("settings-retention").addEventListener("change", showMode);
  $("settings-form").addEventListener("submit", save);
}
