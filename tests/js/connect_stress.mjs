// The page's first moments, many times over: Debian's Chromium (playwright-core) opens the page, signs in
// as a guest, lands in a room (join_room acknowledged: the composer is enabled) and sends one message (its
// send_message acknowledged: the message is confirmed). A join or a send that takes longer than
// --stuck-ms is counted as stuck. Not part of the suite: a tool to measure the Engine.IO upgrade race.
//
//   node connect_stress.mjs <server url> [--runs 100] [--parallel 4] [--delay-ms 0] [--ws-delay-ms 0] [--block-ws 1]
//
// --delay-ms: the page reaches the server through a TCP proxy on a free loopback port that holds every
// server-to-page chunk (HTTP answers and WebSocket frames alike) this long.
// --ws-delay-ms: Playwright relays the page's WebSockets and holds each server-to-page message this long
// (polling answers are not delayed: a NOOP can overtake a 3probe, as in the race fixed by 3807c35).
// --block-ws 1: every WebSocket to /socket.io/ fails, as behind a proxy that blocks them.
// Prints one line per stuck run and a summary; exits 1 when anything was stuck, 2 on bad usage.

import net from "node:net";
import { chromium } from "playwright-core";

const args = process.argv.slice(2);
const url = args.shift();
const opts = { runs: 100, parallel: 4, "delay-ms": 0, "ws-delay-ms": 0, "block-ws": 0, "stuck-ms": 5_000 };
while (args.length) {
  const key = args.shift().replace(/^--/, "");
  if (!(key in opts)) {
    console.error(`unknown option --${key}`);
    process.exit(2);
  }
  opts[key] = Number(args.shift());
}
if (!url || !/^https?:\/\//.test(url)) {
  console.error("usage: node connect_stress.mjs <server url> [--runs N] [--parallel N] [--delay-ms MS] [--ws-delay-ms MS]");
  process.exit(2);
}

/** A loopback TCP proxy that delays what the server sends by `delayMs` (order kept). */
function delayingProxy(target, delayMs) {
  const { hostname, port } = new URL(target);
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => setTimeout(() => client.writable && client.write(chunk), delayMs));
    const end = () => setTimeout(() => (client.destroy(), upstream.destroy()), delayMs + 5);
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

async function once(browser, base, index, tally) {
  const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
  const page = await context.newPage();
  const seen = { ws: 0, polls: 0, toasts: [], upgradedAt: 0, join: null };
  // Where join_room went: in a polling POST, or on the WebSocket (flushed with the upgrade's "5" when sent
  // within 20 ms of it: emitted while the upgrade was under way).
  page.on("websocket", (ws) => {
    seen.ws += 1;
    ws.on("framesent", ({ payload }) => {
      const text = String(payload);
      if (text === "5") seen.upgradedAt = Date.now();
      else if (text.includes('"join_room"') && !seen.join) {
        seen.join = seen.upgradedAt && Date.now() - seen.upgradedAt < 20 ? "ws, flushed with the upgrade" : "ws";
      }
    });
  });
  page.on("request", (request) => {
    if (!request.url().includes("transport=polling")) return;
    seen.polls += 1;
    if (request.method() === "POST" && (request.postData() || "").includes('"join_room"') && !seen.join) seen.join = "polling";
  });
  if (opts["block-ws"]) {
    await page.routeWebSocket(/\/socket\.io\//, (ws) => ws.close({ code: 1006, reason: "blocked" }));
  } else if (opts["ws-delay-ms"] > 0) {
    await page.routeWebSocket(/\/socket\.io\//, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((message) => setTimeout(() => ws.send(message), opts["ws-delay-ms"]));
    });
  }
  const name = `s${index}-${Math.random().toString(36).slice(2, 6)}`;
  const room = `stress-${index % 8}`;
  const limit = opts["stuck-ms"] + 15_000;
  let phase = "load";
  try {
    await page.goto(`${base}/#room=${room}`, { timeout: limit });
    await page.locator('#tab-guest[aria-selected="true"]').waitFor({ timeout: limit });
    await page.fill("#username", name);
    phase = "join";
    const joinStart = Date.now();
    await page.click("#signin-btn");
    await page.locator("#message-input:not([disabled])").waitFor({ timeout: limit });
    const joinMs = Date.now() - joinStart;
    phase = "send";
    const text = `hello ${name}`;
    await page.fill("#message-input", text);
    const sendStart = Date.now();
    await page.press("#message-input", "Enter");
    await page.waitForFunction(
      (wanted) => [...document.querySelectorAll("#messages li.message[data-id] .text")].some((n) => n.textContent === wanted),
      text,
      { timeout: limit },
    );
    const sendMs = Date.now() - sendStart;
    tally.join.push(joinMs);
    tally.send.push(sendMs);
    if (joinMs > opts["stuck-ms"]) tally.stuckJoin += 1;
    if (sendMs > opts["stuck-ms"]) tally.stuckSend += 1;
    if (seen.ws > 0) tally.upgraded += 1;
    tally.joinVia[seen.join] = (tally.joinVia[seen.join] ?? 0) + 1;
    seen.toasts = await page.$$eval("#errors li", (nodes) => nodes.map((n) => n.textContent.trim()));
    if (joinMs > opts["stuck-ms"] || sendMs > opts["stuck-ms"] || seen.toasts.length) {
      console.log(`run ${index}: join ${joinMs} ms, send ${sendMs} ms, ws ${seen.ws}, polls ${seen.polls}, toasts ${JSON.stringify(seen.toasts)}`);
    }
  } catch (err) {
    tally.failed += 1;
    if (phase === "join") tally.stuckJoin += 1;
    if (phase === "send") tally.stuckSend += 1;
    const toasts = await page.$$eval("#errors li", (nodes) => nodes.map((n) => n.textContent.trim())).catch(() => []);
    console.log(`run ${index}: FAILED in ${phase}: ${String(err.message).split("\n")[0]}; ws ${seen.ws}, polls ${seen.polls}, toasts ${JSON.stringify(toasts)}`);
  } finally {
    await context.close().catch(() => {});
  }
}

const pct = (list, p) => {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
};

async function main() {
  const proxy = opts["delay-ms"] > 0 ? await delayingProxy(url, opts["delay-ms"]) : null;
  const base = proxy ? `http://127.0.0.1:${proxy.address().port}` : url.replace(/\/$/, "");
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ARGS });
  const tally = { join: [], send: [], stuckJoin: 0, stuckSend: 0, failed: 0, upgraded: 0, joinVia: {} };
  let next = 0;
  const worker = async () => {
    while (next < opts.runs) await once(browser, base, next++, tally);
  };
  await Promise.all(Array.from({ length: opts.parallel }, worker));
  await browser.close();
  proxy?.close();
  console.log(
    `${opts.runs} runs via ${base} (delay ${opts["delay-ms"]} ms, ws delay ${opts["ws-delay-ms"]} ms, ws blocked: ${Boolean(opts["block-ws"])}): ` +
      `stuck joins ${tally.stuckJoin}, stuck sends ${tally.stuckSend}, failed ${tally.failed}, ` +
      `WebSocket opened in ${tally.upgraded}; join p50/p99/max ${pct(tally.join, 50)}/${pct(tally.join, 99)}/` +
      `${Math.max(...tally.join)} ms, send p50/p99/max ${pct(tally.send, 50)}/${pct(tally.send, 99)}/${Math.max(...tally.send)} ms; join_room sent via ${JSON.stringify(tally.joinVia)}`,
  );
  process.exit(tally.stuckJoin || tally.stuckSend || tally.failed ? 1 : 0);
}

main();
