// chatio test page: one user, one room, the whole wire protocol (docs/protocol.md) by hand.
//
// Rule for everything below: text that came from a user or from the server is only ever put into the page
// with textContent (through el()), never with innerHTML, so a message cannot become markup.
"use strict";

(() => {
  const ACK_TIMEOUT_MS = 10_000;
  const TYPING_IDLE_MS = 2_000; // typing_stop after this long without a keystroke
  const TYPING_REFRESH_MS = 3_000; // re-send typing_start while typing: the server expires it after 5 s
  const HISTORY_PAGE = 50;
  const ERROR_SHOWN_MS = 12_000;
  const NEAR_BOTTOM_PX = 120;
  // Error codes after which sending the same message again can succeed.
  const RETRYABLE = new Set(["timeout", "not_connected", "rate_limited", "unavailable", "shutting_down", "internal"]);

  const $ = (id) => document.getElementById(id);
  const ui = {
    login: $("login"),
    loginForm: $("login-form"),
    username: $("username"),
    room: $("room"),
    connectBtn: $("connect-btn"),
    chat: $("chat"),
    roomTitle: $("room-title"),
    connState: $("conn-state"),
    servedBy: $("served-by"),
    pod: $("pod"),
    me: $("me"),
    meName: $("me-name"),
    statusSelect: $("status-select"),
    leaveBtn: $("leave-btn"),
    notice: $("notice"),
    errors: $("errors"),
    members: $("members"),
    memberCount: $("member-count"),
    olderBtn: $("older-btn"),
    messages: $("messages"),
    typing: $("typing"),
    composer: $("composer"),
    input: $("message-input"),
    sendBtn: $("send-btn"),
  };

  /** Everything the page knows; reset by newState() on every connect from the login form. */
  const newState = () => ({
    socket: null,
    username: "",
    room: "",
    session: null, // {user, userId, pod} from the `session` event
    joined: false, // the current connection has a successful join_room ack
    everJoined: false, // some connection had one: later joins catch up with sinceSeq
    messages: new Map(), // message id -> <li>
    firstSeq: null,
    lastSeq: null,
    members: new Map(), // user -> status
    typers: new Set(), // users currently typing (never ourselves)
    myStatus: "online",
    typing: { active: false, lastStartAt: 0, idleTimer: 0 },
    podChanged: false, // the last `session` named another pod than the one before
    shutdown: null, // the last server_shutdown payload, until we are connected again
    closeReason: null, // the last disconnect_reason {code, message}: why the server ends this connection
    reconnectTimer: 0,
  });
  let state = newState();

  // --- small DOM helpers --------------------------------------------------------------------------------

  /** Create an element; `text` is set with textContent, so it is never parsed as HTML. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setConn(kind, label) {
    ui.connState.dataset.state = kind;
    ui.connState.textContent = label;
  }

  function setNotice(text, kind = "info", action = null) {
    ui.notice.replaceChildren();
    if (!text) {
      ui.notice.hidden = true;
      return;
    }
    ui.notice.dataset.kind = kind;
    ui.notice.append(el("span", "notice-text", text));
    if (action) {
      const button = el("button", "secondary", action.label);
      button.type = "button";
      button.addEventListener("click", action.run);
      ui.notice.append(button);
    }
    ui.notice.hidden = false;
  }

  /** Show a failed command visibly: code, message and field, for a while or until dismissed. */
  function showError(context, error) {
    const err = error && typeof error === "object" ? error : { code: "error", message: String(error) };
    const item = el("li", "error");
    item.setAttribute("role", "alert");
    item.dataset.code = err.code || "error";
    const text = el("span", "error-text");
    text.append(el("strong", "error-code", err.code || "error"), document.createTextNode(" "));
    if (context) text.append(el("span", "error-context", `${context}: `));
    text.append(document.createTextNode(err.message || "unknown error"));
    if (err.field) text.append(el("span", "error-field", ` (field: ${err.field})`));
    if (err.retryAfterMs) text.append(document.createTextNode(` Retry in ${Math.ceil(err.retryAfterMs / 1000)} s.`));
    const close = el("button", "error-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", () => item.remove());
    item.append(text, close);
    ui.errors.append(item);
    while (ui.errors.children.length > 5) ui.errors.firstElementChild.remove();
    setTimeout(() => item.remove(), ERROR_SHOWN_MS);
  }

  function formatTime(ts) {
    const date = new Date(ts);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  /** A stable hue per user name, for avatars. */
  function hue(name) {
    let hash = 0;
    for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return hash % 360;
  }

  function avatar(name) {
    const node = el("span", "avatar", String(name).slice(0, 1).toUpperCase());
    node.style.setProperty("--hue", String(hue(name)));
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  /** clientMsgId: 22 characters of A-Z a-z 0-9 _ -. crypto.getRandomValues also works on plain http. */
  function newClientMsgId() {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    const bytes = crypto.getRandomValues(new Uint8Array(22));
    return Array.from(bytes, (b) => alphabet[b & 63]).join("");
  }

  // --- commands -----------------------------------------------------------------------------------------

  /** Emit a command and resolve with its ack; a missing or malformed ack becomes an error ack. */
  async function command(event, payload) {
    const socket = state.socket;
    if (!socket) return { ok: false, error: { code: "not_connected", message: "not connected" } };
    try {
      const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
      if (ack && typeof ack === "object" && typeof ack.ok === "boolean") return ack;
      return { ok: false, error: { code: "bad_ack", message: `unexpected ack for ${event}` } };
    } catch {
      return { ok: false, error: { code: "timeout", message: `no answer within ${ACK_TIMEOUT_MS / 1000} s` } };
    }
  }

  // --- messages -----------------------------------------------------------------------------------------

  /** Our user name as the server knows it (the `session` event wins over what we typed). */
  const me = () => state.session?.user ?? state.username;

  function isMine(msg) {
    if (state.session && msg.userId) return msg.userId === state.session.userId;
    return msg.user === me();
  }

  function isNearBottom() {
    const list = ui.messages;
    return list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function messageNode(msg, pending = false) {
    const mine = pending || isMine(msg);
    const item = el("li", mine ? "message mine" : "message");
    const body = el("div", "bubble");
    const meta = el("div", "meta");
    meta.append(el("span", "author", mine ? `${msg.user} (you)` : msg.user));
    if (!pending) {
      const time = el("time", "time", formatTime(msg.ts));
      if (Number.isFinite(msg.ts)) {
        time.dateTime = new Date(msg.ts).toISOString();
        time.title = new Date(msg.ts).toLocaleString();
      }
      meta.append(time);
    } else {
      meta.append(el("span", "time", "sending…"));
    }
    body.append(meta, el("div", "text", msg.text));
    item.append(avatar(msg.user), body);
    return item;
  }

  /** Insert a confirmed message in seq order, ahead of any still-pending messages of ours. */
  function insertBySeq(node, seq) {
    let before = null;
    for (const child of ui.messages.children) {
      if (child.dataset.pending !== undefined || Number(child.dataset.seq) > seq) {
        before = child;
        break;
      }
    }
    ui.messages.insertBefore(node, before);
  }

  /**
   * Add messages of the current room, skipping ids already shown (the ack of our own send and the
   * catch-up after a reconnect may both carry one). `replace` drops everything shown first.
   */
  function addMessages(list, { replace = false, forceScroll = false } = {}) {
    const stick = forceScroll || replace || isNearBottom();
    const anchor = ui.messages.scrollHeight - ui.messages.scrollTop;
    if (replace) {
      for (const node of state.messages.values()) node.remove();
      state.messages.clear();
      state.firstSeq = null;
      state.lastSeq = null;
    }
    let added = 0;
    for (const msg of Array.isArray(list) ? list : []) {
      if (!msg || msg.room !== state.room || state.messages.has(msg.id)) continue;
      const node = messageNode(msg);
      node.dataset.id = msg.id;
      node.dataset.seq = String(msg.seq);
      insertBySeq(node, msg.seq);
      state.messages.set(msg.id, node);
      if (state.firstSeq === null || msg.seq < state.firstSeq) state.firstSeq = msg.seq;
      if (state.lastSeq === null || msg.seq > state.lastSeq) state.lastSeq = msg.seq;
      if (isMine(msg) && msg.clientMsgId) dropPending(msg.clientMsgId);
      if (state.typers.delete(msg.user)) renderTyping();
      added += 1;
    }
    if (stick) scrollToBottom();
    else if (added) ui.messages.scrollTop = ui.messages.scrollHeight - anchor; // keep the reader's place
    ui.olderBtn.hidden = !(state.firstSeq !== null && state.firstSeq > 1);
    return added;
  }

  function pendingNode(clientMsgId) {
    return ui.messages.querySelector(`li[data-pending="${CSS.escape(clientMsgId)}"]`);
  }

  function dropPending(clientMsgId) {
    const node = pendingNode(clientMsgId);
    if (node) node.remove();
  }

  async function sendMessage(text, clientMsgId) {
    let node = pendingNode(clientMsgId);
    if (!node) {
      node = messageNode({ user: me(), text }, true);
      node.dataset.pending = clientMsgId;
      ui.messages.append(node);
      scrollToBottom();
    }
    node.classList.remove("failed");
    node.querySelector(".send-failure")?.remove();
    node.querySelector(".time").textContent = "sending…";

    const ack = await command("send_message", { room: state.room, text, clientMsgId });
    if (ack.ok) {
      node.remove();
      addMessages([ack.message], { forceScroll: true });
      return;
    }
    showError("send_message", ack.error);
    markFailed(node, text, clientMsgId, ack.error);
  }

  function markFailed(node, text, clientMsgId, error) {
    node.classList.add("failed");
    node.querySelector(".time").textContent = "not sent";
    const failure = el("div", "send-failure");
    failure.append(el("span", "", `${error?.code || "error"}: ${error?.message || ""}`));
    if (RETRYABLE.has(error?.code)) {
      const retry = el("button", "link", "Retry");
      retry.type = "button";
      // The same clientMsgId again: if the first attempt was stored after all, the server returns it.
      retry.addEventListener("click", () => {
        if (state.joined) sendMessage(text, clientMsgId);
      });
      failure.append(retry);
    }
    const edit = el("button", "link", "Edit");
    edit.type = "button";
    edit.addEventListener("click", () => {
      node.remove();
      ui.input.value = text;
      autosize();
      ui.input.focus();
    });
    const discard = el("button", "link", "Discard");
    discard.type = "button";
    discard.addEventListener("click", () => node.remove());
    failure.append(edit, discard);
    node.querySelector(".bubble").append(failure);
  }

  async function loadOlder() {
    if (state.firstSeq === null) return;
    ui.olderBtn.disabled = true;
    const ack = await command("history", { room: state.room, before: state.firstSeq, limit: HISTORY_PAGE });
    ui.olderBtn.disabled = false;
    if (!ack.ok) {
      showError("history", ack.error);
      return;
    }
    addMessages(ack.messages);
    ui.olderBtn.hidden = !ack.hasMore;
  }

  // --- members, presence and typing ---------------------------------------------------------------------

  function renderMembers() {
    const names = [...state.members.keys()].sort((a, b) => a.localeCompare(b));
    const items = names.map((name) => {
      const status = state.members.get(name);
      const item = el("li", "member");
      item.dataset.user = name;
      item.dataset.status = status;
      const face = el("span", "face");
      const dot = el("span", "dot");
      dot.dataset.status = status;
      dot.title = status;
      face.append(avatar(name), dot);
      const label = el("span", "member-name", name);
      if (name === me()) label.append(el("span", "you", " (you)"));
      const info = el("span", "member-info");
      info.append(label, el("span", "member-status", status));
      item.append(face, info);
      return item;
    });
    ui.members.replaceChildren(...items);
    ui.memberCount.textContent = String(names.length);
  }

  function renderTyping() {
    const names = [...state.typers].sort((a, b) => a.localeCompare(b));
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length === 3) text = `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
    else if (names.length > 3) text = `${names[0]}, ${names[1]} and ${names.length - 2} others are typing…`;
    ui.typing.textContent = text;
  }

  function setMyStatus(status) {
    state.myStatus = status;
    ui.statusSelect.value = status;
    if (state.members.has(me())) {
      state.members.set(me(), status);
      renderMembers();
    }
  }

  function typingInput() {
    if (!state.joined) return;
    const typing = state.typing;
    clearTimeout(typing.idleTimer);
    if (ui.input.value.trim() === "") {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (!typing.active || now - typing.lastStartAt > TYPING_REFRESH_MS) {
      typing.active = true;
      typing.lastStartAt = now;
      command("typing_start", { room: state.room }).then((ack) => ack.ok || showError("typing_start", ack.error));
    }
    typing.idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    const typing = state.typing;
    clearTimeout(typing.idleTimer);
    if (!typing.active) return;
    typing.active = false;
    if (state.joined) {
      command("typing_stop", { room: state.room }).then((ack) => ack.ok || showError("typing_stop", ack.error));
    }
  }

  // --- connection ---------------------------------------------------------------------------------------

  /** Enabled while joined; otherwise the composer is off and the member list is shown as stale. */
  function setComposerEnabled(enabled) {
    ui.input.disabled = !enabled;
    ui.sendBtn.disabled = !enabled;
    ui.chat.classList.toggle("stale", !enabled);
  }

  async function joinRoom() {
    const catchUp = state.everJoined;
    const payload = { room: state.room };
    // After a reconnect ask only for what we missed; an empty room so far means "everything after 0".
    if (catchUp) payload.sinceSeq = state.lastSeq ?? 0;
    const socket = state.socket;
    const ack = await command("join_room", payload);
    if (socket !== state.socket) return; // the user left meanwhile
    if (!ack.ok) {
      showError("join_room", ack.error);
      if (!catchUp) backToLogin(); // a first join that fails (bad room name, ...) leaves nothing to show
      return;
    }
    state.joined = true;
    state.everJoined = true;
    state.members = new Map((ack.members || []).map((m) => [m.user, m.status]));
    state.typers.clear();
    renderTyping();
    renderMembers();
    const added = addMessages(ack.history, { replace: !catchUp || ack.reset === true });
    setComposerEnabled(true);
    if (catchUp && ack.reset) setNotice("You missed too many messages; showing the latest ones.", "warn");
    else if (catchUp) {
      const missed = added ? `: ${added} missed message(s) loaded` : "";
      const pod = state.podChanged ? `, now served by ${state.session.pod}` : "";
      setNotice(`Reconnected${missed}${pod}.`, "ok");
    }
    if (catchUp) setTimeout(() => ui.notice.dataset.kind === "ok" && setNotice(""), 4_000);
    if (!catchUp) ui.input.focus();
    // A new connection starts online; restore the status the user chose.
    if (state.myStatus !== "online") {
      const statusAck = await command("user_status", { status: state.myStatus });
      if (!statusAck.ok) showError("user_status", statusAck.error);
    }
  }

  function onDisconnected(reason) {
    state.joined = false;
    state.typing.active = false;
    clearTimeout(state.typing.idleTimer);
    setComposerEnabled(false);
    state.typers.clear();
    renderTyping();
    if (reason === "io client disconnect") return;
    if (reason === "io server disconnect") {
      // socket.io-client does not reconnect by itself after a server-side disconnect.
      if (state.shutdown) {
        const wait = Math.max(0, Number(state.shutdown.reconnectAfterMs) || 0) + Math.random() * 1_000;
        setConn("reconnecting", "reconnecting…");
        state.reconnectTimer = setTimeout(() => state.socket?.connect(), wait);
      } else {
        setConn("offline", "disconnected");
        const why = state.closeReason ? `: ${state.closeReason.message}` : ".";
        setNotice(`The server closed the connection${why}`, "warn", {
          label: "Reconnect",
          run: () => state.socket?.connect(),
        });
      }
      return;
    }
    setConn("reconnecting", "reconnecting…");
    const why = state.closeReason ? state.closeReason.message : reason;
    state.closeReason = null;
    if (!state.shutdown) setNotice(`Connection lost (${why}); reconnecting…`, "warn");
  }

  function wireSocket(socket) {
    socket.on("connect", () => {
      setConn("connected", `connected · ${socket.io.engine.transport.name}`);
      socket.io.engine.once("upgrade", (transport) => {
        if (socket.connected) setConn("connected", `connected · ${transport.name}`);
      });
      state.shutdown = null;
      state.closeReason = null;
      if (ui.notice.dataset.kind !== "ok") setNotice("");
      joinRoom();
    });

    socket.on("connect_error", (err) => {
      if (!socket.active) {
        // Refused by the server (for example a bad username): the client will not retry.
        showError("connect", { code: "connect_error", message: err.message });
        backToLogin();
        return;
      }
      setConn("reconnecting", "reconnecting…");
    });

    socket.on("disconnect", onDisconnected);
    socket.io.on("reconnect_attempt", (attempt) => setConn("reconnecting", `reconnecting… (attempt ${attempt})`));

    socket.on("session", (session) => {
      const previousPod = state.session?.pod;
      state.session = session;
      ui.pod.textContent = session.pod;
      ui.servedBy.hidden = false;
      ui.meName.textContent = session.user;
      state.podChanged = Boolean(previousPod && previousPod !== session.pod);
    });

    socket.on("message", (msg) => addMessages([msg]));

    socket.on("user_joined", ({ room, user }) => {
      if (room !== state.room) return;
      if (!state.members.has(user)) state.members.set(user, "online");
      renderMembers();
    });

    socket.on("user_left", ({ room, user }) => {
      if (room !== state.room) return;
      state.members.delete(user);
      if (state.typers.delete(user)) renderTyping();
      renderMembers();
    });

    socket.on("presence", ({ user, status }) => {
      if (user === me() && status !== "offline") {
        setMyStatus(status);
        return;
      }
      if (!state.members.has(user)) return;
      if (status === "offline") {
        state.members.delete(user);
        if (state.typers.delete(user)) renderTyping();
      } else {
        state.members.set(user, status);
      }
      renderMembers();
    });

    socket.on("typing", ({ room, user, typing }) => {
      if (room !== state.room || user === me()) return;
      if (typing) state.typers.add(user);
      else state.typers.delete(user);
      renderTyping();
    });

    socket.on("command_error", ({ event, error }) => showError(event, error));

    // Sent just before the server ends this connection (token expired, account deleted, too slow a reader).
    socket.on("disconnect_reason", (payload) => {
      state.closeReason = { code: String(payload?.code || ""), message: String(payload?.message || "") };
    });

    socket.on("server_shutdown", (payload) => {
      state.shutdown = payload || {};
      const after = Number(state.shutdown.reconnectAfterMs) || 0;
      const reason = String(state.shutdown.reason || "server shutting down");
      const headline = reason.charAt(0).toUpperCase() + reason.slice(1);
      setNotice(`${headline}: reconnecting in ${Math.round(after / 100) / 10} s…`, "warn");
    });
  }

  function connect(username, room) {
    state = newState();
    state.username = username;
    state.room = room;
    ui.messages.replaceChildren();
    ui.members.replaceChildren();
    ui.errors.replaceChildren();
    renderTyping();
    setNotice("");
    ui.roomTitle.textContent = `#${room}`;
    ui.roomTitle.hidden = false;
    ui.meName.textContent = username;
    ui.statusSelect.value = "online";
    ui.login.hidden = true;
    ui.chat.hidden = false;
    ui.me.hidden = false;
    setConn("connecting", "connecting…");
    // Same origin; forceNew so that signing in again gets a fresh Manager with the new auth.
    state.socket = io({ auth: { username }, forceNew: true });
    wireSocket(state.socket);
  }

  function backToLogin() {
    const socket = state.socket;
    clearTimeout(state.reconnectTimer);
    clearTimeout(state.typing.idleTimer);
    state.socket = null;
    state.joined = false;
    if (socket) {
      socket.removeAllListeners();
      socket.io.removeAllListeners?.();
      socket.disconnect();
    }
    setComposerEnabled(false);
    ui.chat.hidden = true;
    ui.me.hidden = true;
    ui.roomTitle.hidden = true;
    ui.servedBy.hidden = true;
    ui.login.hidden = false;
    setConn("idle", "not connected");
    ui.connectBtn.disabled = false;
    ui.username.focus();
  }

  // --- wiring the page ----------------------------------------------------------------------------------

  function autosize() {
    ui.input.style.height = "auto";
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 160)}px`;
  }

  function remember(username, room) {
    try {
      localStorage.setItem("chatio.username", username);
      localStorage.setItem("chatio.room", room);
    } catch {
      // Storage can be unavailable (private mode); remembering is only a convenience.
    }
  }

  function prefill() {
    const params = new URLSearchParams(location.search);
    let saved = {};
    try {
      saved = { username: localStorage.getItem("chatio.username"), room: localStorage.getItem("chatio.room") };
    } catch {
      // See remember().
    }
    ui.username.value = params.get("user") || saved.username || "";
    ui.room.value = params.get("room") || saved.room || "lobby";
  }

  ui.loginForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const username = ui.username.value.trim();
    const room = ui.room.value.trim() || "lobby";
    if (!username) return;
    remember(username, room);
    ui.connectBtn.disabled = true;
    connect(username, room);
  });

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!state.joined) return;
    const text = ui.input.value;
    if (text.trim() === "") return;
    stopTyping();
    ui.input.value = "";
    autosize();
    sendMessage(text, newClientMsgId());
  });

  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });

  ui.input.addEventListener("input", () => {
    autosize();
    typingInput();
  });

  ui.statusSelect.addEventListener("change", async () => {
    const wanted = ui.statusSelect.value;
    const previous = state.myStatus;
    state.myStatus = wanted; // a reconnect meanwhile restores what the user chose
    const ack = await command("user_status", { status: wanted });
    if (ack.ok) setMyStatus(ack.status || wanted);
    else {
      showError("user_status", ack.error);
      setMyStatus(previous);
    }
  });

  // Stay at the newest message while the list changes size (a notice appears, the window is resized),
  // unless the reader has scrolled up.
  let stuckToBottom = true;
  ui.messages.addEventListener("scroll", () => {
    stuckToBottom = isNearBottom();
  });
  new ResizeObserver(() => stuckToBottom && scrollToBottom()).observe(ui.messages);

  ui.olderBtn.addEventListener("click", loadOlder);
  ui.leaveBtn.addEventListener("click", backToLogin);

  prefill();
})();
