// Finding people: GET /api/chat/users?q= (a username prefix), a page at a time, each with their status
// and a button that opens a direct message. Everyone the server knows, not only those online.

import { $, avatar, button, el } from "./dom.js";
import { openDialog } from "./dialogs.js";
import { plainError } from "./notices.js";
import { app } from "./state.js";

const PAGE = 20;
const STATUS_WORDS = { online: "online", away: "away", busy: "busy", offline: "offline" };

let openDm = null; // (username) => Promise, from the chat module
let cursor = null;
let asked = "";

function personItem(user) {
  const item = el("li", "person-row");
  item.dataset.user = user.username;
  const name = user.displayName || user.username;
  const face = el("span", "face small");
  const dot = el("span", "dot");
  dot.dataset.status = user.status;
  face.append(avatar(name, "avatar small"), dot);
  const info = el("span", "member-info");
  info.append(el("span", "member-name", name), el("span", "member-status", `@${user.username} · ${STATUS_WORDS[user.status] || user.status}`));
  item.append(face, info);
  if (user.username !== app.auth.user?.username) {
    item.append(
      button("Message", "secondary small", () => {
        $("people-dialog").close();
        openDm(user.username);
      }, { "aria-label": `Send ${name} a direct message` }),
    );
  }
  return item;
}

async function load(more) {
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (asked) query.set("q", asked);
  if (more && cursor) query.set("cursor", cursor);
  $("people-summary").textContent = "Searching…";
  let page;
  try {
    page = await app.auth.api("GET", `/users?${query}`);
  } catch (err) {
    $("people-summary").textContent = plainError(err.error);
    return;
  }
  const items = page.users.map(personItem);
  if (more) $("people-list").append(...items);
  else $("people-list").replaceChildren(...items);
  cursor = page.next;
  $("people-more").hidden = !cursor;
  const shown = $("people-list").children.length;
  $("people-summary").textContent = shown
    ? `${shown} ${shown === 1 ? "person" : "people"}${asked ? ` whose username starts with “${asked}”` : ""}${cursor ? ", more below" : ""}.`
    : `Nobody's username starts with “${asked}”.`;
}

export function setupDirectory(startDm) {
  openDm = startDm;
  $("people-btn").addEventListener("click", () => {
    $("people-q").value = "";
    asked = "";
    $("people-list").replaceChildren();
    openDialog($("people-dialog"), $("people-q"));
    load(false);
  });
  $("people-form").addEventListener("submit", (event) => {
    event.preventDefault();
    asked = $("people-q").value.trim();
    load(false);
  });
  $("people-more").addEventListener("click", () => load(true));
}
