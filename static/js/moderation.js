// A room's moderation, for its owner and admins: mute, remove and ban a member with a reason and a
// duration (a dialog), who is banned (with Unban) and who is muted (Unmute is offered to them only),
// and the room's moderation log. The lists come from GET /api/chat/rooms/{room}/bans and .../mutes and
// are read again after every `moderated` event in the room; `role_changed` makes a new admin one at once.

import { $, button, el } from "./dom.js";
import { formMessage, openDialog } from "./dialogs.js";
import { plainError, showError, showInfo } from "./notices.js";
import { roomLabel } from "./rooms.js";
import { app, command, invalidate, me, openRoom } from "./state.js";

const HOUR = 3_600;
const DAY = 24 * HOUR;
const DURATIONS = {
  mute: [["10 minutes", 600], ["1 hour", HOUR], ["1 day", DAY], ["1 week", 7 * DAY]],
  ban: [["Until unbanned", null], ["1 hour", HOUR], ["1 day", DAY], ["1 week", 7 * DAY], ["30 days", 30 * DAY]],
};
const VERB = { mute: "Mute", kick: "Remove", ban: "Ban" };
const DONE = { kick: "removed", ban: "banned", unban: "unbanned", mute: "muted", unmute: "unmuted" };
const LOG_WORDS = { ...DONE, kick: "removed from the room", delete_message: "deleted a message of" };

/** The owner and admins moderate a room, server administrators every room (the page leaves DMs alone). */
export const manages = (room) =>
  Boolean(room) && room.kind !== "dm" && (app.session?.admin === true || room.role === "owner" || room.role === "admin");

const when = (ms) => new Date(ms).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });

function effect(action, room) {
  if (action === "mute") return "They stay in the room but cannot send or edit messages until the mute ends or you lift it.";
  if (action === "ban") return "They leave the room now and cannot enter it again until the ban ends or you lift it.";
  return room.kind === "private"
    ? "They leave the room now and stop being a member: only a new invitation lets them back in."
    : "They leave the room now; they may join it again.";
}

// --- the lists ---------------------------------------------------------------------------------------------

const loading = new Set();

/** Read the room's bans and mutes (owner and admins only); the member list and the ban list follow. */
export async function loadRestrictions(room) {
  if (!manages(room) || loading.has(room.id)) return;
  loading.add(room.id);
  const path = `/rooms/${encodeURIComponent(room.id)}`;
  try {
    const [bans, mutes] = await Promise.all([app.auth.api("GET", `${path}/bans`), app.auth.api("GET", `${path}/mutes`)]);
    room.bans = bans.bans;
    room.mutes = new Map(mutes.mutes.map((mute) => [mute.user, mute]));
  } catch (err) {
    // Lost the role meanwhile (403) or the server is away: say so once, offer nothing stale.
    room.bans = [];
    room.mutes = new Map();
    if (err.status !== 403) showError(err.error, "bans and mutes");
  } finally {
    loading.delete(room.id);
  }
  invalidate("members");
}

function banItem(room, ban) {
  const item = el("li", "ban");
  item.dataset.user = ban.user;
  const info = el("span", "ban-info");
  info.append(el("span", "member-name", ban.user));
  const meta = [`by ${ban.by ?? "?"}`, ban.until ? `until ${when(ban.until)}` : "until unbanned"];
  if (ban.reason) meta.push(`“${ban.reason}”`);
  info.append(el("span", "ban-meta", meta.join(" · ")));
  const unban = button("Unban", "secondary small", () => lift(room, "unban", ban.user), { "aria-label": `Unban ${ban.user}` });
  item.append(info, unban);
  return item;
}

let shownFor = null; // the room whose lists the panel shows: read again when another room is opened

/** The details panel's moderation part: shown to the room's owner and admins only. */
export function renderModeration(room) {
  const section = $("mod-section");
  section.hidden = !manages(room);
  if (section.hidden) return;
  if (room.bans === null || shownFor !== room.id) {
    shownFor = room.id;
    loadRestrictions(room);
    if (room.bans === null) return;
  }
  $("bans").replaceChildren(...room.bans.map((ban) => banItem(room, ban)));
  $("ban-count").textContent = String(room.bans.length);
  $("bans-empty").hidden = room.bans.length > 0;
}

async function lift(room, action, user) {
  const ack = await command(action, { room: room.id, user });
  if (!ack.ok) {
    showError(ack.error, action);
    return;
  }
  showInfo(`${user} is ${DONE[action]}.`);
  await loadRestrictions(room);
}

// --- the member menu and the dialog --------------------------------------------------------------------------

/** The ⋯ menu of a member's row: a disclosure (<details>), so it works with the keyboard as it is. */
export function moderationMenu(room, user, name, { setRole }) {
  const menu = el("details", "mod");
  const summary = el("summary", "icon-btn small", "⋯");
  summary.setAttribute("aria-label", `Moderate ${name}`);
  summary.title = "Moderate";
  const list = el("div", "mod-menu");
  const item = (label, run) =>
    button(label, "link", () => {
      menu.open = false;
      run();
    });
  const muted = room.mutes?.get(user);
  list.append(
    muted ? item("Unmute", () => lift(room, "unmute", user)) : item("Mute…", () => askModerate(room, "mute", user, name)),
    item("Remove from the room…", () => askModerate(room, "kick", user, name)),
    item("Ban…", () => askModerate(room, "ban", user, name)),
  );
  if (room.role === "owner") {
    list.append(item("Make admin", () => setRole(room, user, "admin")), item("Make a plain member", () => setRole(room, user, "member")));
  }
  menu.append(summary, list);
  return menu;
}

let asked = null; // {room, action, user, name}

function askModerate(room, action, user, name) {
  asked = { room, action, user, name };
  $("moderate-heading").textContent = name === user ? `${VERB[action]} ${user}` : `${VERB[action]} ${name} (@${user})`;
  $("moderate-effect").textContent = `${effect(action, room)} Room: ${roomLabel(room)}.`;
  const durations = DURATIONS[action];
  $("moderate-duration-field").hidden = !durations;
  $("moderate-duration").replaceChildren(
    ...(durations || []).map(([label, seconds], index) => {
      const option = el("option", "", label);
      option.value = String(index);
      option.dataset.seconds = seconds === null ? "" : String(seconds);
      return option;
    }),
  );
  $("moderate-reason").value = "";
  $("moderate-submit").textContent = VERB[action];
  formMessage($("moderate-error"), "");
  // The member list may be drawn again meanwhile: then the focus returns to this member's new ⋯.
  const menuOf = () => document.querySelector(`#members li[data-user="${CSS.escape(user)}"] summary`) ?? $("members-btn");
  openDialog($("moderate-dialog"), durations ? $("moderate-duration") : $("moderate-reason"), menuOf);
}

async function submitModerate(event) {
  event.preventDefault();
  if (!asked) return;
  const { room, action, user, name } = asked;
  const payload = { room: room.id, user };
  const reason = $("moderate-reason").value.trim();
  if (reason) payload.reason = reason;
  const seconds = $("moderate-duration").selectedOptions[0]?.dataset.seconds;
  if (DURATIONS[action] && seconds) payload.seconds = Number(seconds);
  const ack = await command(action, payload);
  if (!ack.ok) {
    formMessage($("moderate-error"), plainError(ack.error));
    return;
  }
  $("moderate-dialog").close();
  showInfo(`${name} is ${DONE[action]}.`);
  await loadRestrictions(room);
}

// --- the log ----------------------------------------------------------------------------------------------------

function logItem(entry, everyRoom) {
  const item = el("li", "log-entry");
  item.dataset.action = entry.action;
  const line = `${entry.by} ${LOG_WORDS[entry.action] || entry.action} ${entry.user ?? ""}`.trim();
  item.append(el("span", "log-time", when(entry.at)), el("span", "log-line", line));
  const details = everyRoom ? [`in ${entry.room}`] : [];
  if (entry.until) details.push(`until ${when(entry.until)}`);
  if (entry.reason) details.push(`“${entry.reason}”`);
  if (details.length) item.append(el("span", "log-meta", details.join(" · ")));
  return item;
}

/** The moderation log of `room`, or (null, for server administrators) of every room. */
export async function openLog(room) {
  $("audit-heading").textContent = room ? `Moderation log of ${roomLabel(room)}` : "Moderation log of every room";
  $("audit-list").replaceChildren();
  $("audit-summary").textContent = "Loading…";
  openDialog($("audit-dialog"));
  try {
    const query = room ? `?${new URLSearchParams({ room: room.id })}` : "";
    const { entries } = await app.auth.api("GET", `/moderation/audit${query}`);
    $("audit-list").replaceChildren(...entries.map((entry) => logItem(entry, !room)));
    $("audit-summary").textContent =
      entries.length === 0
        ? "Nothing so far: nobody was muted, removed or banned here, and no one's message was deleted."
        : entries.length === 1
          ? "One action so far."
          : `${entries.length} actions, newest first.`;
  } catch (err) {
    $("audit-summary").textContent = plainError(err.error);
  }
}

export function setupModeration() {
  $("moderate-form").addEventListener("submit", submitModerate);
  $("moderate-reason").maxLength = 500;
  $("audit-btn").addEventListener("click", () => openRoom() && openLog(openRoom()));
}

/** After a moderation event in a room this user manages, its lists are read again; a new role counts at once. */
export function wireModeration(conn) {
  conn.on("moderated", ({ room: id }) => {
    const room = app.rooms.get(id);
    if (manages(room)) loadRestrictions(room);
  });
  conn.on("role_changed", ({ room: id, user, role, by }) => {
    const room = app.rooms.get(id);
    if (!room || user !== me()) return;
    room.role = role;
    room.bans = null; // read again if the panel shows them now
    showInfo(`${by} made you ${role === "admin" ? "an admin" : "a plain member"} of ${roomLabel(room)}.`);
    invalidate("members", "header");
  });
}
