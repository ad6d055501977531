// The Socket.IO connection (the vendored socket.io-client, global `io`): commands with acks, connection
// states in plain words, and what to do when the server ends the connection.

import { setBanner, setConnState } from "./notices.js";

const ACK_TIMEOUT_MS = 10_000;

// disconnect_reason codes (docs/protocol.md, "Staying connected") in plain words.
const CLOSED_BECAUSE = {
  token_expired: "Your sign-in expired.",
  session_ended: "You were signed out (this session was logged out).",
  account_deleted: "This account was deleted.",
  slow_consumer: "Your connection fell behind.",
};

export class Connection {
  /**
   * `token()` gives the current access token; `hooks`: onConnected(), onLost(), onSession(session),
   * onEnded(message) (cannot go on: sign in again), renew() (a promise of a fresh token).
   */
  constructor(token, hooks) {
    this.hooks = hooks;
    this.shutdown = null;
    this.closeReason = null;
    this.reconnectTimer = 0;
    this.everConnected = false;
    // forceNew: signing in again gets a fresh Manager; auth is read again on every reconnect.
    // socket.io-client's default transports: long-polling first, then the upgrade to a WebSocket where
    // one opens (behind a proxy that blocks WebSockets the page stays on polling).
    this.socket = io({ auth: (send) => send({ token: token() }), forceNew: true });
    this.wire();
    setConnState("connecting", "Connecting…");
  }

  get connected() {
    return this.socket.connected;
  }

  on(event, handler) {
    this.socket.on(event, handler);
  }

  /** Emit a command and resolve with its ack; a missing or malformed ack becomes an error ack. */
  async command(event, payload) {
    if (!this.socket.connected) return { ok: false, error: { code: "not_connected", message: "not connected" } };
    try {
      const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
      if (ack && typeof ack === "object" && typeof ack.ok === "boolean") return ack;
      return { ok: false, error: { code: "internal", message: `unexpected answer to ${event}` } };
    } catch {
      return { ok: false, error: { code: "timeout", message: `no answer within ${ACK_TIMEOUT_MS / 1000} s` } };
    }
  }

  close() {
    clearTimeout(this.reconnectTimer);
    this.socket.removeAllListeners();
    this.socket.io.removeAllListeners?.();
    this.socket.disconnect();
  }

  wire() {
    const socket = this.socket;
    socket.on("connect", () => {
      setConnState("connected", "Online");
      this.shutdown = null;
      this.closeReason = null;
      this.everConnected = true;
      this.hooks.onConnected();
    });

    socket.on("connect_error", async (err) => {
      const code = err?.data?.code;
      if (code === "token_expired") {
        try {
          await this.hooks.renew();
          socket.connect();
        } catch {
          this.hooks.onEnded("Your sign-in expired. Please sign in again.");
        }
        return;
      }
      if (!socket.active) {
        // Refused by the server (a deleted account, a revoked session): the client will not retry.
        this.hooks.onEnded(`The server refused the connection: ${err.message}`);
        return;
      }
      setConnState("reconnecting", "Can’t reach the server — retrying…");
    });

    socket.io.on("reconnect_attempt", () => setConnState("reconnecting", "Reconnecting…"));
    socket.on("disconnect", (reason) => this.onDisconnect(reason));
    socket.on("session", (session) => this.hooks.onSession(session));

    socket.on("disconnect_reason", (payload) => {
      this.closeReason = { code: String(payload?.code || ""), message: String(payload?.message || "") };
    });

    socket.on("server_shutdown", (payload) => {
      this.shutdown = payload || {};
      const after = Math.max(0, Number(this.shutdown.reconnectAfterMs) || 0);
      setBanner(`The server is restarting. Reconnecting in ${Math.max(1, Math.round(after / 1000))} s…`, "warn");
    });
  }

  onDisconnect(reason) {
    this.hooks.onLost();
    if (reason === "io client disconnect") return;
    const closed = this.closeReason;
    this.closeReason = null;
    if (reason === "io server disconnect") {
      // socket.io-client does not reconnect by itself after a server-side disconnect.
      if (closed?.code === "token_expired") {
        setConnState("reconnecting", "Reconnecting…");
        this.hooks
          .renew()
          .then(() => this.socket.connect())
          .catch(() => this.hooks.onEnded("Your sign-in expired. Please sign in again."));
        return;
      }
      if (closed && closed.code !== "slow_consumer") {
        this.hooks.onEnded(CLOSED_BECAUSE[closed.code] || closed.message || "The server ended the connection.");
        return;
      }
      const wait = Math.max(0, Number(this.shutdown?.reconnectAfterMs) || 0) + Math.random() * 1_000;
      setConnState("reconnecting", "Reconnecting…");
      this.reconnectTimer = setTimeout(() => this.socket.connect(), wait);
      return;
    }
    setConnState("reconnecting", "Reconnecting…");
    if (this.shutdown) return; // the restart banner already says what happens
    const why = closed ? `${CLOSED_BECAUSE[closed.code] || closed.message} ` : "";
    setBanner(`${why}Connection lost. Reconnecting… Messages you missed will load when you are back.`, "warn");
  }
}
