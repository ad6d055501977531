// Small DOM helpers. The one rule of this page: text that came from a user or from the server goes into
// the page only as text (textContent, text nodes, attribute values), never as HTML. richText() is the one
// place that makes elements out of user text, and it makes only <a> elements for http(s) URLs.

/** Create an element; `text` is set with textContent, so it is never parsed as HTML. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function button(label, className, onClick, attrs = {}) {
  const node = el("button", className, label);
  node.type = "button";
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (onClick) node.addEventListener("click", onClick);
  return node;
}

export const $ = (id) => document.getElementById(id);

// A URL starts at http:// or https:// and runs to white space; closing punctuation at its end stays text.
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/giu;
const TRAILING = /[.,;:!?'")\]}>»”’]+$/u;

/** `text` as a fragment of text nodes and links: http(s) URLs become <a>, everything else stays text. */
export function richText(text) {
  const fragment = document.createDocumentFragment();
  const source = String(text);
  let last = 0;
  for (const match of source.matchAll(URL_RE)) {
    let href = match[0];
    const trailing = href.match(TRAILING);
    if (trailing) href = href.slice(0, -trailing[0].length);
    let url;
    try {
      url = new URL(href);
    } catch {
      continue;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") continue;
    fragment.append(document.createTextNode(source.slice(last, match.index)));
    const link = el("a", "link", href);
    link.href = url.href;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    fragment.append(link);
    last = match.index + href.length;
  }
  fragment.append(document.createTextNode(source.slice(last)));
  return fragment;
}

export function formatTime(ts) {
  const date = new Date(ts);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function formatDay(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return "";
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86_400_000);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  return date.toLocaleDateString([], { weekday: "long", month: "long", day: "numeric" });
}

/** A stable hue per user name, for avatars. */
function hue(name) {
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

/** A round avatar with the first letter (first grapheme) of the name. */
export function avatar(name, className = "avatar") {
  const first = [...new Intl.Segmenter().segment(String(name || "?"))][0]?.segment ?? "?";
  const node = el("span", className, first.toUpperCase());
  node.style.setProperty("--hue", String(hue(name)));
  node.setAttribute("aria-hidden", "true");
  return node;
}

/** The length the server counts: code points of the trimmed text. */
export const textLength = (text) => [...String(text).trim()].length;

/** clientMsgId: 22 characters of A-Z a-z 0-9 _ -. crypto.getRandomValues also works on plain http. */
export function newClientMsgId() {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  const bytes = crypto.getRandomValues(new Uint8Array(22));
  return Array.from(bytes, (b) => alphabet[b & 63]).join("");
}
