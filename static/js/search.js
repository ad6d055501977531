// Search over the rooms the user may read (GET /api/chat/search); each result links to its room.

import { openRoom as open } from "./joining.js";
import { $, el, formatDay, formatTime, richText } from "./dom.js";
import { showError } from "./notices.js";
import { displayName, roomLabel } from "./rooms.js";
import { app } from "./state.js";

const PAGE = 20;
let query = "";
let nextSkip = null;

/** Mark where the words searched for occur in a result's text nodes (<mark>, the text itself stays text). */
function highlight(node, q) {
  const wanted = q.toLocaleLowerCase();
  const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) texts.push(walker.currentNode);
  for (const text of texts) {
    const value = text.nodeValue;
    const lower = value.toLocaleLowerCase();
    // Only where lower-casing keeps the length, so that positions in `lower` are positions in `value`.
    if (lower.length !== value.length || !lower.includes(wanted)) continue;
    const parts = document.createDocumentFragment();
    let from = 0;
    for (let at = lower.indexOf(wanted); at !== -1; at = lower.indexOf(wanted, from)) {
      parts.append(value.slice(from, at), el("mark", "hit", value.slice(at, at + wanted.length)));
      from = at + wanted.length;
    }
    parts.append(value.slice(from));
    text.replaceWith(parts);
  }
}

function resultItem(msg) {
  const item = el("li", "result");
  const link = el("a", "result-link");
  link.href = `#room=${encodeURIComponent(msg.room)}&seq=${msg.seq}`;
  link.dataset.room = msg.room;
  link.dataset.seq = String(msg.seq);
  const known = app.rooms.get(msg.room);
  const where = known ? roomLabel(known) : msg.room;
  const meta = el("span", "result-meta");
  meta.append(
    el("span", "result-room", known?.kind === "dm" ? where : `# ${where}`),
    el("span", "result-author", displayName(msg, msg.user)),
    el("span", "result-time", `${formatDay(msg.ts)} ${formatTime(msg.ts)}`),
  );
  const text = el("span", "result-text");
  text.append(richText(msg.text));
  highlight(text, query);
  link.append(meta, text);
  link.addEventListener("click", (event) => {
    if (event.target.closest("a.link")) return; // a link inside the message opens itself
    event.preventDefault();
    closeSearch();
    open(msg.room, { focusSeq: msg.seq });
  });
  item.append(link);
  return item;
}

async function run(q, skip) {
  const params = new URLSearchParams({ q, limit: String(PAGE) });
  if (skip) params.set("skip", String(skip));
  $("search-summary").textContent = "Searching…";
  let found;
  try {
    found = await app.auth.api("GET", `/search?${params}`);
  } catch (err) {
    $("search-summary").textContent = "";
    showError(err.error, "search");
    return;
  }
  const items = found.messages.map(resultItem);
  if (skip) $("search-results").append(...items);
  else $("search-results").replaceChildren(...items);
  const shown = $("search-results").children.length;
  $("search-summary").textContent = shown
    ? `${shown}${found.nextSkip ? "+" : ""} message${shown === 1 ? "" : "s"} with “${q}” in the rooms you can read`
    : `Nothing found for “${q}”.`;
  nextSkip = found.nextSkip;
  $("search-more").hidden = !nextSkip;
}

// The panel covers the conversation: what is under it leaves the Tab order meanwhile (inert).
const COVERED = ["scroller", "typing", "compose-bar", "composer"];

function showPanel(shown) {
  $("search-panel").hidden = !shown;
  for (const id of COVERED) $(id).inert = shown;
}

function openSearch(q) {
  query = q.trim();
  if (!query) return;
  $("search-input").value = query;
  $("search-input-2").value = query;
  showPanel(true);
  document.body.classList.remove("search-open");
  run(query, 0);
}

export function closeSearch() {
  showPanel(false);
}

export function setupSearch() {
  for (const [form, input] of [
    ["search-form", "search-input"],
    ["search-form-2", "search-input-2"],
  ]) {
    $(form).addEventListener("submit", (event) => {
      event.preventDefault();
      openSearch($(input).value);
    });
  }
  $("search-toggle").addEventListener("click", () => {
    showPanel(true);
    $("search-input-2").focus();
  });
  // Escape in the top bar's box, too, ends a search (the panel's own keys are handled below).
  $("search-input").addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("search-panel").hidden) closeSearch();
  });
  $("search-close").addEventListener("click", () => {
    closeSearch();
    $("message-input").focus();
  });
  $("search-more").addEventListener("click", () => run(query, nextSkip));
  $("search-panel").addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    closeSearch();
    $("message-input").focus();
  });
}
