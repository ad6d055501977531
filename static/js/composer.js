// The composer: the message box with the server's length limit, Enter to send, and the bar above it when
// replying to or editing a message (Escape ends it, Up in an empty box edits your last message).

import { editMessage, sendMessage, typingInput } from "./messages.js";
import { $, textLength } from "./dom.js";
import { displayName, lastOwnMessage } from "./rooms.js";
import { app, me, openRoom } from "./state.js";

const COUNTER_FROM = 0.8; // show the counter from this share of the limit on

export function setComposerEnabled(enabled) {
  $("message-input").disabled = !enabled;
  $("conversation").classList.toggle("stale", !enabled);
  composerInput(false);
}

function autosize() {
  const input = $("message-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
}

/** The counter and the send button follow the text: the server's limit comes from GET /api/chat/config. */
export function composerInput(typed = true) {
  const input = $("message-input");
  const max = app.config?.messageMaxLength ?? Infinity;
  const length = textLength(input.value);
  const counter = $("counter");
  const over = length > max;
  counter.hidden = length < max * COUNTER_FROM;
  counter.textContent = over
    ? `${length.toLocaleString()} / ${max.toLocaleString()} — ${(length - max).toLocaleString()} too many`
    : `${length.toLocaleString()} / ${max.toLocaleString()}`;
  counter.classList.toggle("over", over);
  $("send-btn").disabled = input.disabled || length === 0 || over;
  input.setAttribute("aria-invalid", over ? "true" : "false");
  autosize();
  if (typed) typingInput(openRoom(), length === 0);
}

// Replying to or editing a message: a bar above the composer says which, Escape ends it.
let compose = null; // {mode: "reply" | "edit", msg, roomId}

export function startCompose(mode, msg) {
  const input = $("message-input");
  if (compose?.mode === "edit" && mode !== "edit") input.value = "";
  compose = { mode, msg, roomId: msg.room };
  if (mode === "edit") input.value = msg.text;
  renderComposeBar();
  composerInput(false);
  input.focus();
}

function endCompose() {
  if (compose?.mode === "edit") $("message-input").value = "";
  compose = null;
  renderComposeBar();
  composerInput(false);
}

export function renderComposeBar() {
  const bar = $("compose-bar");
  if (compose && compose.roomId !== openRoom()?.id) compose = null;
  bar.hidden = !compose;
  if (!compose) return;
  const what = compose.mode === "edit" ? "Editing your message" : `Replying to ${displayName(compose.msg, compose.msg.user)}`;
  $("compose-what").textContent = what;
  $("compose-text").textContent = compose.msg.text;
}

function submit(onSubmit) {
  const room = openRoom();
  const input = $("message-input");
  if (!room?.joined || $("send-btn").disabled) return;
  const text = input.value;
  const current = compose;
  input.value = "";
  compose = null;
  renderComposeBar();
  composerInput(false);
  onSubmit();
  if (current?.mode === "edit") {
    if (text.trim() !== current.msg.text.trim()) editMessage(room, current.msg, text);
  } else {
    sendMessage(room, text, undefined, current?.mode === "reply" ? current.msg.id : null);
  }
}

/** Wire the composer; `onSubmit` runs when a message is sent or edited (the list then follows it). */
export function setupComposer(onSubmit) {
  const input = $("message-input");
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submit(onSubmit);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit(onSubmit);
    } else if (event.key === "Escape" && compose) {
      event.preventDefault();
      endCompose();
    } else if (event.key === "ArrowUp" && input.value === "" && openRoom()) {
      // Up in an empty box edits your last message, as in most chat apps.
      const own = lastOwnMessage(openRoom(), me());
      if (own) {
        event.preventDefault();
        startCompose("edit", own);
      }
    }
  });
  $("compose-cancel").addEventListener("click", () => {
    endCompose();
    input.focus();
  });
  input.addEventListener("input", () => composerInput());
}
