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

const ICONS = {
  react: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM8.5 14.5s1.2 1.8 3.5 1.8 3.5-1.8 3.5-1.8M9 9.5h.01M15 9.5h.01",
  reply: "M10 8 5 12.5l5 4.5M5.5 12.5H14a5 5 0 0 1 5 5V19",
  edit: "M4 20h4L19 9l-4-4L4 16zM13.5 6.5l4 4",
  delete: "M5 7h14M10 7V4.5h4V7M7 7l1 13h8l1-13",
  more: "M6 12h.01M12 12h.01M18 12h.01",
  message: "M4 5h16v11H8l-4 4z",
};

/** A stroked 24x24 icon (the page's own, no font needed). */
export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

/** An icon-only button; `label` is what assistive technology and the tooltip say. */
export function iconButton(name, label, className, onClick) {
  const node = button("", `icon-btn small ${className}`, onClick, { "aria-label": label, title: label });
  node.append(icon(name));
  return node;
}
