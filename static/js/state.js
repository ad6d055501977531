// The page's one shared state, and a way for the views to be told what changed.

export const app = {
  config: null, // GET /api/chat/config: the server's limits, never hard-coded here
  auth: null, // Auth (auth.js)
  conn: null, // Connection (connection.js)
  session: null, // the last `session` event {user, userId, pod, guest, expiresAt}
  rooms: new Map(), // room id -> room (rooms.js)
  openId: null, // the room shown in the conversation
  invitations: new Map(), // room id -> {room, by}
  online: [], // GET /api/chat/users?online=true: [{username, displayName, status}]
  myStatus: "online",
};

const views = new Map(); // part -> render function
const dirty = new Set();
let queued = false;

export function registerView(part, render) {
  views.set(part, render);
}

/** Re-render these parts ("sidebar", "conversation", "members", "header") once, after the current task. */
export function invalidate(...parts) {
  for (const part of parts) dirty.add(part);
  if (queued) return;
  queued = true;
  queueMicrotask(() => {
    queued = false;
    const parts = [...dirty];
    dirty.clear();
    for (const part of parts) views.get(part)?.();
  });
}

export const openRoom = () => (app.openId ? app.rooms.get(app.openId) ?? null : null);

/** A Socket.IO command on the current connection; resolves to its ack (connection.js). */
export const command = (event, payload) => app.conn.command(event, payload);

export const me = () => app.session?.user ?? app.auth?.user?.username ?? "";
