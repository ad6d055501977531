// Who the user is: sign-in (account or guest), the tokens, their renewal, REST calls with them.
//
// Where the tokens live (README, "Security"): the access token and, for an account, the refresh token are
// kept in this tab's sessionStorage, so a reload keeps the session, another tab signs in on its own (two
// tabs sharing one single-use refresh token would look like a stolen token and end the session), and
// closing the tab forgets them. Nothing is kept in localStorage or cookies.

const STORAGE_KEY = "chatio.session";
const RENEW_MARGIN_MS = 60_000; // renew this long before expiry (or at 80 % of a shorter lifetime)
const RETRY_RENEW_MS = 5_000;

export class AuthError extends Error {
  constructor(error, status) {
    super(error?.message || "request failed");
    this.error = error;
    this.status = status;
  }
}

/** A JSON request to the server's REST API; resolves with the body, throws AuthError with {code, message}. */
export async function request(method, path, { body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(`/api/chat${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
  } catch {
    throw new AuthError({ code: "network", message: "the server cannot be reached" }, 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // An empty or non-JSON answer (a balancer's error page): described below by its status.
  }
  if (!response.ok) {
    throw new AuthError(data?.error || { code: `http_${response.status}`, message: response.statusText }, response.status);
  }
  return data;
}

export class Auth {
  constructor({ onRenewed, onEnded }) {
    this.grant = null; // {kind: "account"|"guest", accessToken, expiresAt, refreshToken?, user}
    this.onRenewed = onRenewed; // (accessToken) => void: hand the new token to the socket
    this.onEnded = onEnded; // (reason) => void: the session cannot go on
    this.timer = 0;
    this.renewing = null;
  }

  get user() {
    return this.grant?.user ?? null;
  }

  get token() {
    return this.grant?.accessToken ?? null;
  }

  get isGuest() {
    return this.grant?.kind === "guest";
  }

  /** The session this tab kept across a reload, renewed first if its access token is (nearly) expired. */
  async restore() {
    let kept = null;
    try {
      kept = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    } catch {
      kept = null;
    }
    if (!kept?.accessToken || !kept.user) return false;
    this.grant = kept;
    if (kept.expiresAt - Date.now() < RENEW_MARGIN_MS / 2) {
      try {
        await this.renew();
      } catch {
        this.forget();
        return false;
      }
    } else {
      this.schedule();
    }
    return true;
  }

  async register(username, password, displayName, email) {
    const body = { username, password };
    if (displayName) body.displayName = displayName;
    if (email) body.email = email;
    await request("POST", "/users", { body });
    return this.login(username, password);
  }

  async login(username, password) {
    const grant = await request("POST", "/auth/login", { body: { username, password } });
    this.keep("account", grant);
  }

  async guest(username) {
    const grant = await request("POST", "/auth/guest", { body: { username } });
    this.keep("guest", grant);
  }

  async logout() {
    const grant = this.grant;
    this.forget();
    if (grant?.refreshToken) {
      await request("POST", "/auth/logout", { body: { refreshToken: grant.refreshToken } }).catch(() => {});
    }
  }

  forget() {
    clearTimeout(this.timer);
    this.grant = null;
    try {
      sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      // Storage may be unavailable; then there is nothing to forget either.
    }
  }

  keep(kind, grant) {
    this.grant = {
      kind,
      accessToken: grant.accessToken,
      expiresAt: grant.expiresAt,
      refreshToken: grant.refreshToken ?? null,
      user: grant.user,
    };
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(this.grant));
    } catch {
      // Without storage a reload signs out; the session itself still works.
    }
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    if (!this.grant) return;
    const left = this.grant.expiresAt - Date.now();
    // A minute before expiry, or at 80 % of a shorter lifetime.
    const wait = Math.max(1_000, left - Math.min(RENEW_MARGIN_MS, left * 0.2));
    this.timer = setTimeout(() => this.renewQuietly(), wait);
  }

  async renewQuietly() {
    try {
      await this.renew();
    } catch (err) {
      if (err instanceof AuthError && err.status === 401) this.onEnded("Your session has ended. Please sign in again.");
      else if (this.grant) this.timer = setTimeout(() => this.renewQuietly(), RETRY_RENEW_MS);
    }
  }

  /**
   * A new access token: an account spends its refresh token (single use: only one renewal at a time),
   * a guest asks for a new guest token under the same name. Then the socket gets it (refresh_session).
   */
  renew() {
    if (!this.renewing) {
      this.renewing = this.renewOnce().finally(() => {
        this.renewing = null;
      });
    }
    return this.renewing;
  }

  async renewOnce() {
    const grant = this.grant;
    if (!grant) throw new AuthError({ code: "unauthorized", message: "not signed in" }, 401);
    const next =
      grant.kind === "account"
        ? await request("POST", "/auth/refresh", { body: { refreshToken: grant.refreshToken } })
        : await request("POST", "/auth/guest", { body: { username: grant.user.username } });
    if (this.grant !== grant) return; // signed out meanwhile
    this.keep(grant.kind, next);
    this.onRenewed(next.accessToken);
  }

  /** A REST call with the access token; one renewal and retry when the server says it expired. */
  async api(method, path, body) {
    // A token about to expire (a renewal that failed while a process died) is renewed first.
    if (this.grant && this.grant.expiresAt - Date.now() < 5_000) await this.renew().catch(() => {});
    try {
      return await request(method, path, { body, token: this.token });
    } catch (err) {
      if (!(err instanceof AuthError) || err.error?.code !== "token_expired") throw err;
      await this.renew();
      return request(method, path, { body, token: this.token });
    }
  }
}
