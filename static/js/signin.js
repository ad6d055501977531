// The sign-in form: log in, create an account, or (where the server allows guests) just a name.

import { $ } from "./dom.js";
import { plainError } from "./notices.js";
import { app } from "./state.js";

const BUTTON = { login: "Log in", register: "Create account", guest: "Continue as guest" };
let mode = "login";

function setMode(next) {
  mode = next;
  for (const tab of document.querySelectorAll("#signin .tabs [role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
    tab.tabIndex = tab.dataset.mode === mode ? 0 : -1;
  }
  for (const field of document.querySelectorAll("#signin-form [data-for]")) {
    field.hidden = !field.dataset.for.split(" ").includes(mode);
  }
  $("password").autocomplete = mode === "register" ? "new-password" : "current-password";
  $("signin-btn").textContent = BUTTON[mode];
  showError(null);
}

function showError(error) {
  const node = $("signin-error");
  node.textContent = error ? (typeof error === "string" ? error : plainError(error)) : "";
  node.hidden = !error;
}

/** Show the form; `message` says why (signed out, session ended). */
export function showSignin(message = "") {
  $("shell").hidden = true;
  $("signin").hidden = false;
  $("signin-btn").disabled = false;
  $("password").value = "";
  if (message) showError(message);
  $("username").focus();
}

export function setupSignin(onSignedIn) {
  const config = app.config;
  $("username").maxLength = config.usernameMaxLength;
  $("password").maxLength = config.passwordMaxLength;
  $("display-name").maxLength = config.displayNameMaxLength;
  $("password-hint").textContent = `At least ${config.passwordMinLength} characters.`;
  $("tab-guest").hidden = !config.allowGuests;
  const tabs = [...document.querySelectorAll("#signin .tabs [role=tab]")].filter((tab) => !tab.hidden);
  for (const tab of tabs) {
    tab.addEventListener("click", () => setMode(tab.dataset.mode));
    tab.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
      const at = tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : -1);
      const next = tabs[(at + tabs.length) % tabs.length];
      setMode(next.dataset.mode);
      next.focus();
    });
  }
  // A server that allows guests: the quickest way in is a name, so the guest tab comes first.
  setMode(config.allowGuests ? "guest" : "login");

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $("username").value.trim();
    const password = $("password").value;
    if (!username) {
      showError("Choose a username.");
      return;
    }
    if (mode !== "guest" && !password) {
      showError("Enter your password.");
      return;
    }
    $("signin-btn").disabled = true;
    showError(null);
    try {
      if (mode === "login") await app.auth.login(username, password);
      else if (mode === "register") {
        await app.auth.register(username, password, $("display-name").value.trim(), $("email").value.trim());
      }
      else await app.auth.guest(username);
    } catch (err) {
      showError(err.error || String(err));
      $("signin-btn").disabled = false;
      return;
    }
    $("password").value = "";
    onSignedIn();
  });
}
