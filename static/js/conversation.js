// The open room: its title, the messages (paged back on scroll), join/leave lines, who is typing; the
// composer below them is composer.js.

import { composerInput, renderComposeBar, setComposerEnabled, setupComposer, startCompose } from "./composer.js";
import { loadOlder, openRoom as showRoom } from "./joining.js";
import { deleteMessage, discardPending, sendMessage, toggleReaction } from "./messages.js";
import { $, avatar, button, el, formatDay, formatTime, iconButton, richText } from "./dom.js";
import { displayName, lastOwnMessage, lineText, roomLabel } from "./rooms.js";
import { app, invalidate, me, openRoom, registerView } from "./state.js";

const NEAR_BOTTOM_PX = 120;
const NEAR_TOP_PX = 80;
const GROUP_WITHIN_MS = 5 * 60_000;

let shownRoomId = null;
let stuckToBottom = true;

// --- the header ----------------------------------------------------------------------------------------

function renderHeader() {
  const room = openRoom();
  const title = $("room-title");
  title.replaceChildren();
  if (room && room.kind !== "dm") title.append(el("span", `room-icon ${room.kind}`, room.kind === "private" ? "" : "#"));
  title.append(document.createTextNode(room ? roomLabel(room) : "chatio"));
  let sub = "";
  if (room?.kind === "dm") sub = "Direct message";
  else if (room) sub = `${room.kind === "private" ? "Private room" : "Public room"} · ${room.members.size} here`;
  $("room-sub").textContent = sub;
}

// --- the message list ------------------------------------------------------------------------------------


function messageNode(room, msg, { continued, pending }) {
  const mine = msg.user === me();
  const item = el("li", `message${mine ? " mine" : ""}${continued ? " continued" : ""}`);
  // Focusable, so that the keyboard (and a tap) reaches its actions.
  if (!pending) item.tabIndex = 0;
  const name = displayName(msg, msg.user);
  item.append(avatar(name));
  const body = el("div", "bubble");
  const meta = el("div", "meta");
  meta.append(el("span", "author", mine ? `${name} (you)` : name));
  if (name !== msg.user && msg.user) meta.append(el("span", "username", `@${msg.user}`));
  if (pending) meta.append(el("span", "time", pending.failed ? "not sent" : "sending…"));
  else {
    const time = el("time", "time", formatTime(msg.ts));
    if (Number.isFinite(msg.ts)) {
      time.dateTime = new Date(msg.ts).toISOString();
      time.title = new Date(msg.ts).toLocaleString();
    }
    meta.append(time);
  }
  if (msg.editedAt && !msg.deleted) meta.append(el("span", "edited", "(edited)"));
  body.append(meta);
  if (msg.replyTo) body.append(quoteNode(room, msg.replyTo));
  const text = el("div", msg.deleted ? "text deleted" : "text");
  if (msg.deleted) text.textContent = "This message was deleted.";
  else text.append(richText(msg.text));
  body.append(text);
  if (msg.reactions?.length) body.append(reactionsNode(room, msg));
  if (msg.replyCount > 0 && !pending) body.append(el("div", "reply-count", msg.replyCount === 1 ? "1 reply" : `${msg.replyCount} replies`));
  if (pending?.failed) body.append(failureNode(room, pending));
  item.append(body);
  if (!pending && !msg.deleted) item.append(actionsNode(room, msg, mine));
  return item;
}

/** The quoted parent of a reply; a click shows the parent in the conversation. */
function quoteNode(room, quote) {
  const node = el("button", "quote");
  node.type = "button";
  node.append(el("span", "quote-author", displayName(quote, quote.user)));
  node.append(el("span", "quote-text", quote.deleted ? "deleted message" : quote.excerpt ?? ""));
  node.setAttribute("aria-label", `Reply to ${quote.user}: show the message`);
  node.addEventListener("click", () => showRoom(room.id, { focusSeq: quote.seq }));
  return node;
}

function reactionsNode(room, msg) {
  const list = el("div", "reactions");
  for (const reaction of msg.reactions) {
    const mine = reaction.users.includes(me());
    const chip = button(`${reaction.emoji} ${reaction.count}`, `reaction${mine ? " mine" : ""}`, () =>
      toggleReaction(room, msg, reaction.emoji),
    );
    chip.title = reaction.users.join(", ");
    chip.setAttribute("aria-pressed", String(mine));
    chip.setAttribute("aria-label", `${reaction.emoji} by ${reaction.users.join(", ")}`);
    list.append(chip);
  }
  return list;
}

/** Reply, react, edit and delete: shown on hover and on keyboard focus. */
function actionsNode(room, msg, mine) {
  const bar = el("div", "actions");
  const picker = el("div", "picker");
  picker.hidden = true;
  for (const emoji of app.config.reactions || []) {
    picker.append(
      button(emoji, "emoji", () => {
        picker.hidden = true;
        toggleReaction(room, msg, emoji);
      }, { "aria-label": `React with ${emoji}` }),
    );
  }
  picker.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      picker.hidden = true;
      bar.querySelector(".act-react").focus();
    }
  });
  bar.append(
    iconButton("react", "Add a reaction", "act act-react", () => {
      picker.hidden = !picker.hidden;
      if (!picker.hidden) picker.querySelector("button")?.focus();
    }),
    iconButton("reply", "Reply", "act act-reply", () => startCompose("reply", msg)),
  );
  if (mine) bar.append(iconButton("edit", "Edit", "act act-edit", () => startCompose("edit", msg)));
  if (mine || room.role === "owner" || room.role === "admin") {
    bar.append(
      iconButton("delete", "Delete", "act act-delete", () => {
        if (confirm("Delete this message for everyone?")) deleteMessage(room, msg);
      }),
    );
  }
  bar.append(picker);
  return bar;
}

/** "Seen by ...": who read up to our last message (read receipts, where the room shares them). */
function seenNode(room, msg) {
  const who = [...room.reads.entries()].filter(([user, seq]) => user !== me() && seq >= msg.seq).map(([user]) => user);
  const names = who.map((user) => displayName(room.members.get(user), user)).sort();
  return names.length ? el("li", "seen", `Seen by ${names.join(", ")}`) : null;
}

function failureNode(room, pending) {
  const failure = el("div", "send-failure");
  failure.append(el("span", "", pending.failed.message || pending.failed.code || "not sent"));
  failure.append(
    button("Retry", "link", () => {
      room.pending.delete(pending.clientMsgId);
      sendMessage(room, pending.text, pending.clientMsgId);
    }),
    button("Edit", "link", () => {
      discardPending(room, pending.clientMsgId);
      $("message-input").value = pending.text;
      composerInput();
      $("message-input").focus();
    }),
    button("Discard", "link", () => discardPending(room, pending.clientMsgId)),
  );
  return failure;
}

/** Messages, lines and day separators of the room, in order, each with a stable key. */
function timeline(room) {
  const items = [];
  const messages = [...room.messages.values()].sort((a, b) => a.seq - b.seq);
  const lines = [...room.lines].sort((a, b) => a.afterSeq - b.afterSeq);
  let lineAt = 0;
  let previous = null;
  const own = lastOwnMessage(room, me());
  const seen = own && seenNode(room, own);
  let day = null;
  const pushLines = (upTo) => {
    while (lineAt < lines.length && lines[lineAt].afterSeq <= upTo) {
      const line = lines[lineAt++];
      const text = lineText(line);
      items.push({ key: `${line.key}:${text}`, build: () => el("li", "line", text) });
      previous = null;
    }
  };
  pushLines((messages[0]?.seq ?? 1) - 1);
  for (const msg of messages) {
    const msgDay = new Date(msg.ts).toDateString();
    if (msgDay !== day) {
      day = msgDay;
      items.push({ key: `d${msgDay}`, build: () => el("li", "day", formatDay(msg.ts)) });
      previous = null;
    }
    const continued = previous && previous.user === msg.user && msg.ts - previous.ts < GROUP_WITHIN_MS;
    items.push({
      key: `m${msg.id}${continued ? "c" : ""}:${msg.change ?? 0}:${msg.replyCount ?? 0}:${displayName(msg, msg.user)}`,
      build: () => {
        const node = messageNode(room, msg, { continued });
        node.dataset.id = msg.id;
        node.dataset.seq = String(msg.seq);
        return node;
      },
    });
    previous = msg;
    if (seen && msg.id === own.id) {
      items.push({ key: `s${own.id}:${seen.textContent}`, build: () => seen });
      previous = null;
    }
    pushLines(msg.seq);
  }
  pushLines(Infinity);
  for (const pending of room.pending?.values() ?? []) {
    items.push({
      key: `p${pending.clientMsgId}${pending.failed ? "f" : ""}`,
      build: () => {
        const node = messageNode(room, { user: pending.user, text: pending.text }, { pending });
        node.dataset.pending = pending.clientMsgId;
        if (pending.failed) node.classList.add("failed");
        return node;
      },
    });
  }
  return items;
}

/** Bring the list in line with the timeline, keeping the nodes that stay (and the reader's place). */
function reconcile(list, items) {
  const existing = new Map([...list.children].map((node) => [node.dataset.key, node]));
  let cursor = list.firstElementChild;
  for (const item of items) {
    let node = existing.get(item.key);
    if (node) existing.delete(item.key);
    else {
      node = item.build();
      node.dataset.key = item.key;
    }
    if (node === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(node, cursor);
  }
  for (const node of existing.values()) node.remove();
}

function isNearBottom() {
  const s = $("scroller");
  return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
}

function renderConversation() {
  const room = openRoom();
  const scroller = $("scroller");
  const list = $("messages");
  const switched = room?.id !== shownRoomId;
  if (switched) {
    list.replaceChildren();
    shownRoomId = room?.id ?? null;
    stuckToBottom = true;
  }
  const firstBefore = list.querySelector("li[data-seq]");
  const anchorTop = firstBefore ? firstBefore.getBoundingClientRect().top : 0;
  const stick = stuckToBottom || isNearBottom();
  reconcile(list, room ? timeline(room) : []);
  // Older messages were put on top: keep the message that was first where it was on screen.
  if (!stick && firstBefore?.isConnected) scroller.scrollTop += firstBefore.getBoundingClientRect().top - anchorTop;
  const empty = !room || (room.messages.size === 0 && !(room.pending?.size) && room.lines.length === 0);
  $("empty-state").hidden = !empty;
  if (!room) {
    $("empty-title").textContent = "No room open";
    $("empty-text").textContent = "Pick a room on the left, or create one.";
  } else if (room.kind === "dm") {
    $("empty-title").textContent = `This is the start of your conversation with ${roomLabel(room)}`;
    $("empty-text").textContent = "Only the two of you can read it.";
  } else {
    $("empty-title").textContent = "No messages yet";
    $("empty-text").textContent = `Say hello — everyone in ${roomLabel(room)} sees it at once.`;
  }
  const older = $("older-btn");
  older.hidden = !room?.hasOlder;
  older.disabled = Boolean(room?.loadingOlder);
  older.textContent = room?.loadingOlder ? "Loading…" : "Load earlier messages";
  renderTyping(room);
  if (switched) renderComposeBar();
  setComposerEnabled(Boolean(room?.joined) && !(room.mutedUntil && room.mutedUntil > Date.now()));
  let placeholder = "Write a message…";
  if (room?.mutedUntil > Date.now()) placeholder = "You are muted in this room";
  else if (room && !room.joined) placeholder = "Waiting for the connection…";
  $("message-input").placeholder = placeholder;
  if (app.focusSeq && room?.messages.has(app.focusSeq)) {
    const target = list.querySelector(`li[data-seq="${app.focusSeq}"]`);
    app.focusSeq = null;
    if (target) {
      target.classList.add("focused");
      target.scrollIntoView({ block: "center" });
      stuckToBottom = false;
      setTimeout(() => target.classList.remove("focused"), 2_500);
      return;
    }
  }
  if (stick) scroller.scrollTop = scroller.scrollHeight;
  // Too few messages to scroll: nothing would ask for older ones, so fill the view now.
  if (room?.joined && room.hasOlder && !room.loadingOlder && scroller.scrollHeight <= scroller.clientHeight + NEAR_TOP_PX) {
    loadOlder(room);
  }
}

function renderTyping(room) {
  const names = room ? [...room.typers].map((user) => displayName(room.members.get(user), user)).sort() : [];
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length === 3) text = `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
  else if (names.length > 3) text = `${names[0]}, ${names[1]} and ${names.length - 2} others are typing…`;
  $("typing").textContent = text;
}

export function setupConversation() {
  registerView("conversation", renderConversation);
  registerView("header", renderHeader);
  setupComposer(() => {
    stuckToBottom = true;
  });
  const scroller = $("scroller");
  scroller.addEventListener("scroll", () => {
    stuckToBottom = isNearBottom();
    const room = openRoom();
    if (room && scroller.scrollTop < NEAR_TOP_PX && room.hasOlder && !room.loadingOlder) loadOlder(room);
  });
  $("older-btn").addEventListener("click", () => {
    const room = openRoom();
    if (room) loadOlder(room);
  });
  // Stay at the newest message while the list changes size (the keyboard opens, a banner shows).
  new ResizeObserver(() => stuckToBottom && (scroller.scrollTop = scroller.scrollHeight)).observe(scroller);
  invalidate("conversation", "header");
}
