// chatio's page: reads the server's limits, restores or asks for a sign-in, connects, and wires the views.
// Modules by concern: auth (tokens), connection (socket), roomlist (the sidebar's rooms), joining (join,
// catch-up, open, read marks, history), messages (send, edit, react, typing), commands (leave, create,
// invite, DMs, status, roles), events (what the server tells), rooms (what is held), sidebar /
// conversation / composer / details / search / signin (the views), settings, moderation, account and
// directory (the room's, the user's and the server's panels), dialogs, notices, dom, state.

import { setupAccount } from "./account.js";
import { Auth, request } from "./auth.js";
import { openDm, setStatus } from "./commands.js";
import { Connection } from "./connection.js";
import { setupConversation } from "./conversation.js";
import { setupDetails } from "./details.js";
import { setupDirectory } from "./directory.js";
import { wireEvents } from "./events.js";
import { joinAll, markAllLeft, openRoom, roomToOpen } from "./joining.js";
import { $, avatar } from "./dom.js";
import { setupModeration, wireModeration } from "./moderation.js";
import { setBanner, setConnState, showError } from "./notices.js";
import { setupSearch, closeSearch } from "./search.js";
import { setupSettings } from "./settings.js";
import { closeDrawer, setupSidebar } from "./sidebar.js";
import { setupSignin, showSignin } from "./signin.js";
import { forgetNames, rememberName } from "./people.js";
import { loadOnline, loadRoomList } from "./roomlist.js";
import { app, invalidate } from "./state.js";

const THEME_KEY = "chatio.theme";

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function setupTheme() {
  try {
    applyTheme(localStorage.getItem(THEME_KEY));
  } catch {
    // The system's choice, then.
  }
  $("theme-btn").addEventListener("click", () => {
    const current =
      document.documentElement.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    const next = current === "dark" ? "light" : "dark";
    applyTheme(next);
    try {
      localStorage.setItem(THEME_KEY, next);
    } catch {
      // Only for this visit.
    }
  });
}

function renderMe() {
  const user = app.auth.user;
  rememberName(user.username, user.displayName);
  const name = user.displayName || user.username;
  $("me-avatar").replaceChildren(avatar(name));
  $("me-name").textContent = name;
  const kind = app.auth.isGuest ? "guest" : `@${user.username}`;
  $("me-kind").textContent = app.session?.pod ? `${kind} · served by ${app.session.pod}` : kind;
  $("status-select").value = app.myStatus;
}

let startedRooms = false;

async function onConnected() {
  if (!startedRooms) {
    setBanner("");
    await loadRoomList();
    await joinAll();
    loadOnline();
    startedRooms = true;
    const { id, focusSeq } = roomToOpen();
    await openRoom(id, { focusSeq });
  } else {
    // Catch up first; then what changed meanwhile (a DM opened, an invitation) joins the list.
    await joinAll();
    await loadRoomList();
    await joinAll({ onlyNew: true });
    loadOnline();
  }
  invalidate("sidebar", "conversation", "members", "header");
}

function start() {
  $("signin").hidden = true;
  $("shell").hidden = false;
  startedRooms = false;
  renderMe();
  app.conn = new Connection(() => app.auth.token, {
    onConnected,
    onLost: markAllLeft,
    onSession: (session) => {
      app.session = session;
      renderMe();
      invalidate("members"); // a server administrator moderates every room
    },
    onEnded: (message) => signOut(message, { tellServer: false }),
    renew: () => app.auth.renew(),
  });
  wireEvents(app.conn);
  wireModeration(app.conn);
}

async function signOut(message = "", { tellServer = true } = {}) {
  app.conn?.close();
  app.conn = null;
  if (tellServer) await app.auth.logout();
  else app.auth.forget();
  app.rooms.clear();
  app.invitations.clear();
  app.online = [];
  forgetNames();
  app.openId = null;
  app.session = null;
  app.myStatus = "online";
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  closeDrawer();
  closeSearch();
  setBanner("");
  setConnState("idle", "Signed out");
  history.replaceState(null, "", location.pathname);
  invalidate("sidebar", "conversation", "members", "header");
  showSignin(message);
}

async function loadConfig() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await request("GET", "/config");
    } catch (err) {
      setBanner("The chat server cannot be reached. Trying again…", "warn");
      $("notice").hidden = false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 1_000 * 2 ** attempt)));
    }
  }
}

async function boot() {
  setupTheme();
  app.config = await loadConfig();
  setBanner("");
  app.auth = new Auth({
    onRenewed: async (token) => {
      renderMe();
      if (!app.conn?.connected) return;
      const ack = await app.conn.command("refresh_session", { token });
      if (!ack.ok) showError(ack.error, "refresh_session");
    },
    onEnded: (message) => signOut(message, { tellServer: false }),
  });
  setupSidebar();
  setupConversation();
  setupDetails();
  setupSearch();
  setupSettings();
  setupModeration();
  setupAccount(signOut);
  setupDirectory(openDm);
  setupSignin(start);
  $("signout-btn").addEventListener("click", () => signOut());
  $("status-select").addEventListener("change", () => setStatus($("status-select").value));
  window.addEventListener("hashchange", () => {
    const wanted = new URLSearchParams(location.hash.slice(1));
    const id = wanted.get("room");
    if (id && app.auth.user && id !== app.openId) openRoom(id, { focusSeq: Number(wanted.get("seq")) || null });
  });
  if (await app.auth.restore()) start();
  else showSignin();
}

boot();
