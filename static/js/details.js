// The room's details: who is here with their status (a direct message opened from any of them), the
// room's actions (invite for private rooms, settings, leave), how long it keeps messages, and for its
// owner and admins its bans and moderation log (moderation.js). A right column when wide, a drawer when
// narrow.

import { invite, leaveRoom, openDm, setRole } from "./commands.js";
import { formMessage, openDialog } from "./dialogs.js";
import { $, avatar, el, iconButton } from "./dom.js";
import { plainError } from "./notices.js";
import { manages, moderationMenu, renderModeration } from "./moderation.js";
import { displayName, roomLabel } from "./rooms.js";
import { keptFor } from "./settings.js";
import { closeDrawer, openDrawer } from "./sidebar.js";
import { app, invalidate, me, openRoom, registerView } from "./state.js";

const STATUS_WORDS = { online: "Online", away: "Away", busy: "Busy", offline: "Offline" };
const STATUS_ORDER = { online: 0, busy: 1, away: 2, offline: 3 };

function memberItem(user, member) {
  const item = el("li", "member");
  item.dataset.user = user;
  item.dataset.status = member.status;
  const face = el("span", "face");
  const name = displayName(member, user);
  const dot = el("span", "dot");
  dot.dataset.status = member.status;
  face.append(avatar(name), dot);
  const info = el("span", "member-info");
  const label = el("span", "member-name", name);
  if (user === me()) label.append(el("span", "you", " (you)"));
  info.append(label, el("span", "member-status", STATUS_WORDS[member.status] || member.status));
  item.append(face, info);
  const room = openRoom();
  if (user !== me() && room?.kind !== "dm") {
    // An icon, so that a name keeps its room in a narrow panel.
    item.append(
      iconButton("message", `Send ${name} a direct message`, "dm-btn", () => {
        closeDrawer();
        openDm(user);
      }),
    );
    if (manages(room)) item.append(moderationMenu(room, user, name, { setRole }));
  }
  return item;
}

function renderMembers() {
  const room = openRoom();
  $("details-title").textContent = room ? roomLabel(room) : "";
  $("details-sub").textContent = !room
    ? ""
    : room.kind === "dm"
      ? "Direct message: only the two of you"
      : room.kind === "private"
        ? `Private room${room.role ? ` · you are ${room.role === "member" ? "a member" : `the ${room.role}`}` : ""}`
        : "Public room: anyone can join";
  $("invite-btn").hidden = room?.kind !== "private" || room.role === "member";
  $("leave-btn").hidden = !room;
  $("settings-btn").hidden = !manages(room);
  $("room-facts").hidden = !room;
  if (room) $("room-facts").textContent = `${keptFor(room)}${room.receipts === false ? " · read receipts are private" : ""}.`;
  renderModeration(room);
  $("leave-btn").textContent = room?.kind === "dm" ? "Close conversation" : "Leave room";
  const entries = room ? [...room.members.entries()] : [];
  entries.sort(
    ([a, ma], [b, mb]) =>
      (STATUS_ORDER[ma.status] ?? 9) - (STATUS_ORDER[mb.status] ?? 9) || displayName(ma, a).localeCompare(displayName(mb, b)),
  );
  $("members").replaceChildren(...entries.map(([user, member]) => memberItem(user, member)));
  $("member-count").textContent = String(entries.length);
  invalidate("header");
}

function setupInvite() {
  const dialog = $("invite-dialog");
  const name = $("invite-name");
  const error = $("invite-error");
  $("invite-btn").addEventListener("click", () => {
    const room = openRoom();
    if (!room) return;
    $("invite-room").textContent = roomLabel(room);
    name.value = "";
    name.maxLength = app.config.usernameMaxLength;
    formMessage(error, "");
    openDialog(dialog);
  });
  $("invite-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const room = openRoom();
    const user = name.value.trim();
    if (!room || !user) return;
    const failed = await invite(room.id, user);
    if (failed) formMessage(error, plainError(failed));
    else dialog.close();
  });
}

export function setupDetails() {
  registerView("members", renderMembers);
  setupInvite();
  $("leave-btn").addEventListener("click", () => {
    const room = openRoom();
    closeDrawer();
    if (room) leaveRoom(room.id);
  });
  $("members-btn").addEventListener("click", () => {
    // Wide: show or hide the column. Narrow: a drawer.
    if (matchMedia("(max-width: 1099px)").matches) {
      if (document.body.dataset.drawer === "details") closeDrawer();
      else openDrawer("details");
    } else {
      document.body.classList.toggle("details-hidden");
      $("members-btn").setAttribute("aria-expanded", String(!document.body.classList.contains("details-hidden")));
    }
  });
  invalidate("members");
}
