// Display names: the server's events name users by username; their display names come from their
// profiles (GET /api/chat/users/{username}), fetched once per user and kept for this session.

import { app, invalidate } from "./state.js";

const known = new Map(); // username -> display name, or null while asked
const asked = new Map(); // username -> the profile's answer: a promise of the display name

function ask(username) {
  if (!asked.has(username)) {
    known.set(username, null);
    const answer = app.auth
      .api("GET", `/users/${encodeURIComponent(username)}`)
      .then((user) => {
        known.set(username, user?.displayName || username);
        if (user?.displayName && user.displayName !== username) invalidate("conversation", "members", "header");
        return known.get(username);
      })
      .catch(() => {
        known.set(username, username);
        return username;
      });
    asked.set(username, answer);
  }
  return asked.get(username);
}

/** The display name of `username` (the username itself until the profile has answered). */
export function nameOf(username) {
  if (!username) return "";
  if (!known.has(username) && app.auth?.token) ask(username);
  return known.get(username) || username;
}

/** The display name of `username` once known: for text that is shown once (a toast). */
export async function nameSoon(username) {
  if (!username || known.get(username) || !app.auth?.token) return nameOf(username);
  return ask(username);
}

/** A display name learnt elsewhere (a sign-in grant, GET /api/chat/dms). */
export function rememberName(username, displayName) {
  if (username && displayName) known.set(username, displayName);
}

export function forgetNames() {
  known.clear();
  asked.clear();
}
