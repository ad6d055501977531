// The sidebar: invitations, rooms, direct messages with unread markers; the create and browse dialogs;
// the user's own card. On a narrow screen it is a drawer.

import { acceptInvite, createRoom, declineInvite, openDm } from "./commands.js";
import { openRoom } from "./joining.js";
import { formMessage } from "./dialogs.js";
import { $, avatar, button, el } from "./dom.js";
import { plainError, showError } from "./notices.js";
import { roomLabel } from "./rooms.js";
import { app, invalidate, registerView } from "./state.js";

const BROWSE_PAGE = 50;

function roomItem(room) {
  const item = el("li", "room-item");
  item.dataset.room = room.id;
  const link = el("a", "room-link");
  link.href = `#room=${encodeURIComponent(room.id)}`;
  if (room.id === app.openId) link.setAttribute("aria-current", "page");
  if (room.kind === "dm") {
    const face = el("span", "face small");
    face.append(avatar(roomLabel(room), "avatar small"));
    const peer = room.peer && [...app.rooms.values()].find((r) => r.members.has(room.peer.username));
    const status = peer ? peer.members.get(room.peer.username).status : room.members.get(room.peer?.username)?.status;
    const dot = el("span", "dot");
    dot.dataset.status = status || "offline";
    face.append(dot);
    link.append(face);
  } else {
    link.append(el("span", `room-icon ${room.kind}`, room.kind === "private" ? "" : "#"));
  }
  link.append(el("span", "room-name", roomLabel(room)));
  if (room.unread > 0) {
    const badge = el("span", "badge", room.unread > 99 ? "99+" : String(room.unread));
    badge.setAttribute("aria-label", `${room.unread} unread`);
    link.append(badge);
    item.classList.add("unread");
  }
  if (!room.joined && app.conn?.connected) item.classList.add("not-joined");
  link.addEventListener("click", (event) => {
    event.preventDefault();
    openRoom(room.id);
    closeDrawer();
  });
  item.append(link);
  return item;
}

function invitationItem(invitation) {
  const item = el("li", "invitation");
  item.dataset.room = invitation.room;
  const text = el("span", "invitation-text");
  text.append(el("strong", "", invitation.room), document.createTextNode(` from ${invitation.by}`));
  const actions = el("span", "invitation-actions");
  actions.append(
    button("Accept", "primary small", () => acceptInvite(invitation.room).then(closeDrawer)),
    button("Decline", "secondary small", () => declineInvite(invitation.room)),
  );
  item.append(text, actions);
  return item;
}

function onlineItem(user) {
  const item = el("li", "room-item person");
  item.dataset.user = user.username;
  const name = user.displayName || user.username;
  const link = button("", "room-link", () => {
    closeDrawer();
    openDm(user.username);
  }, { "aria-label": `${name}, ${user.status}: send a direct message` });
  const face = el("span", "face small");
  const dot = el("span", "dot");
  dot.dataset.status = user.status;
  face.append(avatar(name, "avatar small"), dot);
  link.append(face, el("span", "room-name", name));
  item.append(link);
  return item;
}

function renderSidebar() {
  const rooms = [...app.rooms.values()];
  const byName = (a, b) => roomLabel(a).localeCompare(roomLabel(b));
  $("room-list").replaceChildren(...rooms.filter((r) => r.kind !== "dm").sort(byName).map(roomItem));
  const dms = rooms.filter((r) => r.kind === "dm").sort(byName);
  $("dm-list").replaceChildren(...dms.map(roomItem));
  $("dm-empty").hidden = dms.length > 0;
  $("online-list").replaceChildren(...app.online.map(onlineItem));
  $("online-count").textContent = String(app.online.length);
  $("online-section").hidden = app.online.length === 0;
  const invitations = [...app.invitations.values()];
  $("invitations").replaceChildren(...invitations.map(invitationItem));
  $("invitations-section").hidden = invitations.length === 0;
  const unread = rooms.reduce((sum, r) => sum + r.unread, 0) + invitations.length;
  $("menu-unread").hidden = unread === 0;
  document.title = unread ? `(${unread}) chatio` : "chatio";
}

// --- the drawer (narrow screens) --------------------------------------------------------------------------

// What an open drawer covers: out of the Tab order (inert) until it closes, so that focus stays in sight.
const UNDER_DRAWER = {
  sidebar: [".skip-link", "#topbar", "#conversation", "#details"],
  details: [".skip-link", "#topbar", "#conversation", "#sidebar"],
};
const setInert = (id, inert) => UNDER_DRAWER[id].forEach((selector) => (document.querySelector(selector).inert = inert));
const toggleOf = (id) => (id === "sidebar" ? $("menu-btn") : $("members-btn"));

export function openDrawer(id) {
  closeDrawer();
  document.body.dataset.drawer = id;
  $("scrim").hidden = false;
  setInert(id, true);
  toggleOf(id).setAttribute("aria-expanded", "true");
  const first = $(id).querySelector("a, button, input, select");
  first?.focus();
}

export function closeDrawer() {
  const open = document.body.dataset.drawer;
  if (!open) return;
  const focus = document.activeElement;
  const hadFocus = !focus || focus === document.body || $(open).contains(focus);
  delete document.body.dataset.drawer;
  $("scrim").hidden = true;
  setInert(open, false);
  $("menu-btn").setAttribute("aria-expanded", "false");
  $("members-btn").setAttribute("aria-expanded", "false");
  // The closed drawer is hidden: focus left in it would be lost, so it goes back to the drawer's button.
  if (hadFocus) toggleOf(open).focus();
}

// --- dialogs ---------------------------------------------------------------------------------------------

function setupNewRoom() {
  const dialog = $("new-room-dialog");
  const name = $("new-room-name");
  $("new-room-btn").addEventListener("click", () => {
    name.value = "";
    name.maxLength = app.config.roomMaxLength;
    $("new-room-private").checked = false;
    formMessage($("new-room-error"), "");
    dialog.showModal();
  });
  $("new-room-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const wanted = name.value.trim();
    if (!wanted) return;
    const error = await createRoom(wanted, $("new-room-private").checked);
    if (error) formMessage($("new-room-error"), plainError(error));
    else {
      dialog.close();
      closeDrawer();
    }
  });
}

function setupBrowse() {
  const dialog = $("browse-dialog");
  let next = null;
  async function load(after) {
    let page;
    try {
      const query = new URLSearchParams({ limit: String(BROWSE_PAGE) });
      if (after) query.set("after", after);
      page = await app.auth.api("GET", `/rooms/public?${query}`);
    } catch (err) {
      showError(err.error, "public rooms");
      return;
    }
    const items = page.rooms.map((room) => {
      const item = el("li", "browse-item");
      item.dataset.room = room.id;
      item.append(el("span", "room-icon public", "#"), el("span", "room-name", room.name || room.id));
      const joined = app.rooms.has(room.id);
      item.append(
        button(joined ? "Open" : "Join", joined ? "secondary small" : "primary small", async () => {
          dialog.close();
          closeDrawer();
          await openRoom(room.id);
        }),
      );
      return item;
    });
    if (!after) $("browse-list").replaceChildren(...items);
    else $("browse-list").append(...items);
    if (!after && items.length === 0) $("browse-list").append(el("li", "side-hint", "No public rooms yet: create one."));
    next = page.next;
    $("browse-more").hidden = !next;
  }
  $("browse-btn").addEventListener("click", async () => {
    $("browse-list").replaceChildren(el("li", "side-hint", "Loading…"));
    dialog.showModal();
    await load(null);
  });
  $("browse-more").addEventListener("click", () => load(next));
}

export function setupSidebar() {
  registerView("sidebar", renderSidebar);
  setupNewRoom();
  setupBrowse();
  for (const dialog of document.querySelectorAll("dialog")) {
    for (const close of dialog.querySelectorAll("[data-close]")) close.addEventListener("click", () => dialog.close());
  }
  $("menu-btn").addEventListener("click", () =>
    document.body.dataset.drawer === "sidebar" ? closeDrawer() : openDrawer("sidebar"),
  );
  $("scrim").addEventListener("click", closeDrawer);
  document.addEventListener("keydown", (event) => {
    // Escape closes the topmost thing only: an open dialog (the browser does that), else the drawer.
    if (event.key === "Escape" && document.body.dataset.drawer && !document.querySelector("dialog[open]")) closeDrawer();
    // Alt+ArrowUp / Alt+ArrowDown: the previous or next room of the list.
    if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      const ids = [...document.querySelectorAll("#sidebar .room-item[data-room]")].map((item) => item.dataset.room);
      const at = ids.indexOf(app.openId);
      const next = ids[(at + (event.key === "ArrowDown" ? 1 : ids.length - 1)) % ids.length];
      if (next) {
        event.preventDefault();
        openRoom(next);
      }
    }
  });
  invalidate("sidebar");
}
