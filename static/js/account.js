// Who I am and what I may do about it: the account dialog (names, how I signed in, the serving process),
// signing out, deleting my account (a confirmation that names what it does), and "About this server"
// (GET /api/chat/stats in plain words); for server administrators, every room's moderation log. Guests
// see what applies to them: no deletion, no password.

import { $ } from "./dom.js";
import { facts, formMessage, openDialog } from "./dialogs.js";
import { openLog } from "./moderation.js";
import { plainError } from "./notices.js";
import { app } from "./state.js";

let signOut = null; // (message, {tellServer}) => void, from main.js

const count = (n, one, many = `${one}s`) => `${Number(n).toLocaleString()} ${n === 1 ? one : many}`;

function openAccount() {
  const user = app.auth.user;
  const guest = app.auth.isGuest;
  const pairs = [
    ["Display name", user.displayName || user.username],
    ["Username", `@${user.username}`],
    ["Signed in", guest ? "as a guest (no password)" : "with a password"],
  ];
  if (user.email) pairs.push(["E-mail", user.email]);
  const admin = app.session?.admin === true;
  if (admin) pairs.push(["On this server", "an administrator: you moderate every room"]);
  $("all-log-btn").hidden = !admin;
  if (app.session?.pod) pairs.push(["Served by", app.session.pod]);
  facts($("account-facts"), pairs);
  $("account-guest-hint").hidden = !guest;
  $("delete-account-btn").hidden = guest;
  openDialog($("account-dialog"));
}

function askDelete() {
  const user = app.auth.user;
  $("account-dialog").close();
  for (const node of document.querySelectorAll(".delete-name")) node.textContent = user.username;
  formMessage($("delete-error"), "");
  $("delete-submit").disabled = false;
  openDialog($("delete-dialog"), $("delete-keep"));
}

async function deleteAccount(event) {
  event.preventDefault();
  const user = app.auth.user;
  if (!user) return;
  $("delete-submit").disabled = true;
  try {
    await app.auth.api("DELETE", `/users/${encodeURIComponent(user.id)}`);
  } catch (err) {
    formMessage($("delete-error"), plainError(err.error));
    $("delete-submit").disabled = false;
    return;
  }
  $("delete-dialog").close();
  // The server closes this account's sockets and refuses its tokens from now on.
  signOut(`The account ${user.username} was deleted. That username cannot be used again.`, { tellServer: false });
}

function uptime(seconds) {
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return count(minutes, "minute");
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${count(hours, "hour")} ${count(minutes % 60, "minute")}` : count(Math.floor(hours / 24), "day");
}

async function loadStats() {
  $("about-summary").textContent = "Loading…";
  let stats;
  try {
    stats = await app.auth.api("GET", "/stats");
  } catch (err) {
    $("about-summary").textContent = plainError(err.error);
    $("about-facts").replaceChildren();
    return;
  }
  const others = stats.pods.length - 1;
  $("about-summary").textContent = others
    ? `You are served by ${stats.pod}, one of ${stats.pods.length} processes sharing the chat.`
    : `You are served by ${stats.pod}, the only process.`;
  const pairs = [
    ["Connections here", count(stats.connections, "connection")],
    ["Connections in all", count(stats.clusterConnections, "connection")],
    ["Processes", stats.pods.map((pod) => `${pod.pod} (${count(pod.connections, "connection")})`).join(", ")],
    ["Online now", count(stats.onlineUsers, "person", "people")],
    ["Rooms in use now", count(stats.activeRooms, "room")],
    ["Stored", `${count(stats.users, "user")}, ${count(stats.rooms, "room")}, ${count(stats.messages, "message")}`],
    ["Messages at most", `${count(app.config.messageMaxLength, "character")} each`],
    ["Messages kept", app.config.retentionDays ? count(app.config.retentionDays, "day") : "forever (unless a room says otherwise)"],
    ["Up for", uptime(stats.uptimeSeconds)],
  ];
  facts($("about-facts"), pairs);
}

function openAbout() {
  $("account-dialog").close();
  openDialog($("about-dialog"), $("about-close"));
  loadStats();
}

export function setupAccount(onSignOut) {
  signOut = onSignOut;
  $("account-btn").addEventListener("click", openAccount);
  $("account-signout").addEventListener("click", () => {
    $("account-dialog").close();
    signOut();
  });
  $("delete-account-btn").addEventListener("click", askDelete);
  $("delete-form").addEventListener("submit", deleteAccount);
  $("about-btn").addEventListener("click", openAbout);
  $("all-log-btn").addEventListener("click", () => {
    $("account-dialog").close();
    openLog(null);
  });
  $("about-refresh").addEventListener("click", loadStats);
}
