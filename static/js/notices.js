// What the page tells the user: short-lived toasts for failed commands, one banner for the connection.

import { $, button, el } from "./dom.js";

const TOAST_SHOWN_MS = 10_000;
const TOASTS_KEPT = 4;

// Plain words for the error codes of docs/protocol.md; the server's own message follows them.
const PLAIN = {
  invalid_payload: "That was not accepted",
  not_in_room: "You are not in that room",
  room_not_found: "No such room",
  room_full: "The room is full",
  too_many_rooms: "You are in too many rooms at once",
  rate_limited: "Slow down",
  forbidden: "Not allowed",
  unauthorized: "Not signed in",
  token_expired: "Your sign-in expired",
  not_found: "Not found",
  conflict: "Already taken",
  unavailable: "The server could not save that; try again",
  shutting_down: "The server is restarting; try again in a moment",
  internal: "Something went wrong on the server",
  timeout: "No answer from the server",
  not_connected: "Not connected",
  network: "The server cannot be reached",
};

export function plainError(error) {
  const err = error && typeof error === "object" ? error : { code: "error", message: String(error) };
  const headline = PLAIN[err.code] || "Something went wrong";
  let text = err.message ? `${headline}: ${err.message}` : headline;
  if (err.retryAfterMs) text += ` (retry in ${Math.ceil(err.retryAfterMs / 1000)} s)`;
  return text;
}

/** Show a failed command (or any problem) as a toast: dismissible, gone after a while. */
export function showError(error, context = "") {
  const item = el("li", "toast error");
  item.setAttribute("role", "alert");
  item.dataset.code = (error && error.code) || "error";
  const text = el("span", "toast-text", plainError(error));
  if (context) item.dataset.context = context;
  item.append(text, button("×", "toast-close", () => item.remove(), { "aria-label": "Dismiss" }));
  addToast(item, TOAST_SHOWN_MS);
}

/** A short confirmation ("Invitation sent"), same place as errors. */
export function showInfo(message) {
  const item = el("li", "toast info", message);
  item.setAttribute("role", "status");
  addToast(item, 4_000);
}

/** At most TOASTS_KEPT toasts at a time, errors and confirmations alike: the oldest goes first. */
function addToast(item, shownMs) {
  const list = $("errors");
  list.append(item);
  while (list.children.length > TOASTS_KEPT) list.firstElementChild.remove();
  setTimeout(() => item.remove(), shownMs);
}

/** The one-line banner under the top bar: connection trouble and what the page does about it. */
export function setBanner(text, kind = "info", action = null) {
  const banner = $("notice");
  banner.replaceChildren();
  if (!text) {
    banner.hidden = true;
    delete banner.dataset.kind;
    return;
  }
  banner.dataset.kind = kind;
  banner.append(el("span", "notice-text", text));
  if (action) banner.append(button(action.label, "link", action.run));
  banner.hidden = false;
}

/** The connection pill in the top bar: `state` for styling and tests, `label` in plain words. */
export function setConnState(state, label) {
  const pill = $("conn-state");
  pill.dataset.state = state;
  pill.querySelector(".conn-label").textContent = label;
  pill.title = label;
}
