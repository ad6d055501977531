// The room's details: who is here with their status (a direct message opened from any of them), and
// the room's actions (invite for private rooms, leave). A right column when wide, a drawer when narrow.

import { invite, leaveRoom, moderate, openDm, setReceipts, setRole } from "./commands.js";
import { $, avatar, button, el } from "./dom.js";
import { plainError } from "./notices.js";
import { displayName, roomLabel } from "./rooms.js";
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
    item.append(
      button("Message", "secondary small", () => {
        closeDrawer();
        openDm(user);
      }, { "aria-label": `Send ${name} a direct message` }),
    );
    if (room.role === "owner" || room.role === "admin") item.append(moderationMenu(room, user, name));
  }
  return item;
}

const MUTE_SECONDS = 600;

/** Mute, kick, ban: a disclosure (<details>), so it works with the keyboard without any script of ours. */
function moderationMenu(room, user, name) {
  const menu = el("details", "mod");
  const summary = el("summary", "icon-btn small", "⋯");
  summary.setAttribute("aria-label", `Moderate ${name}`);
  summary.title = "Moderate";
  const list = el("div", "mod-menu");
  const act = (label, action, extra) =>
    button(label, "link", () => {
      menu.open = false;
      moderate(room, action, user, extra);
    });
  list.append(
    act(`Mute for ${MUTE_SECONDS / 60} minutes`, "mute", { seconds: MUTE_SECONDS }),
    act("Unmute", "unmute"),
    act("Remove from the room", "kick"),
    act("Ban", "ban"),
  );
  if (room.role === "owner") {
    list.append(
      button("Make admin", "link", () => {
        menu.open = false;
        setRole(room, user, "admin");
      }),
      button("Make a plain member", "link", () => {
        menu.open = false;
        setRole(room, user, "member");
      }),
    );
  }
  menu.append(summary, list);
  return menu;
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
  const manages = room && room.kind !== "dm" && (room.role === "owner" || room.role === "admin");
  $("receipts-label").hidden = !manages;
  $("receipts-toggle").checked = room?.receipts !== false;
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
    error.hidden = true;
    dialog.showModal();
  });
  $("invite-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const room = openRoom();
    const user = name.value.trim();
    if (!room || !user) return;
    const failed = await invite(room.id, user);
    if (failed) {
      error.textContent = plainError(failed);
      error.hidden = false;
    } else {
      dialog.close();
    }
  });
}

export function setupDetails() {
  registerView("members", renderMembers);
  setupInvite();
  $("receipts-toggle").addEventListener("change", () => {
    const room = openRoom();
    if (room) setReceipts(room, $("receipts-toggle").checked);
  });
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
