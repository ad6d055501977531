// The test page in a real browser: Debian's Chromium driven by playwright-core.
//
//   node page.mjs http://127.0.0.1:8080 /tmp/out [--catchup-max N]
//
// With --catchup-max N (the server's CHATIO_CATCHUP_MAX) it also checks the `reset: true` path: a client that
// missed more than N messages replaces what it shows with the latest page, then pages back with
// "Load earlier messages" to the full conversation.
//
// Two users in two browser contexts join one room; checks typing, messages, presence, a visible error ack and
// that user text stays text (an XSS payload is shown literally). Saves screenshots into the output folder
// (two-tabs.png shows both users side by side). Exits 0 when all checks pass, 1 on a failure, 2 on bad usage.

import { mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { chromium } from "playwright-core";

const RUN_DEADLINE_MS = 60_000;
const STEP_TIMEOUT_MS = 6_000;
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const [url, outDir, ...options] = process.argv.slice(2);
const catchupMax = options[0] === "--catchup-max" ? Number(options[1]) : null;
if (!url || !/^https?:\/\//.test(url) || !outDir || (options.length && !(catchupMax >= 1))) {
  console.error("usage: node page.mjs <server url> <output folder> [--catchup-max N]");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

let browser = null;
const pageErrors = [];
let failed = 0;

const deadline = setTimeout(async () => {
  console.error(`FAIL run did not finish within ${RUN_DEADLINE_MS / 1000} s`);
  await browser?.close().catch(() => {});
  process.exit(1);
}, RUN_DEADLINE_MS);

/** Run one named check; a thrown error or a false result is a failure. Returns whether it passed. */
async function step(name, body) {
  try {
    const result = await body();
    if (result === false) throw new Error("condition was false");
    console.log(`ok   ${name}`);
    return true;
  } catch (err) {
    failed += 1;
    console.log(`FAIL ${name}: ${String(err.message || err).split("\n")[0]}`);
    return false;
  }
}

const runId = Math.random().toString(36).slice(2, 7);
const room = `page-${runId}`;
const alice = `alice-${runId}`;
const bob = `bob-${runId}`;
const XSS_IMG = `<img src=x onerror="window.__xss=1">`;
const XSS_BOLD = "<b>bold</b>";

/**
 * A switch for one page's Socket.IO traffic: while `cut`, its WebSockets are closed and its polling
 * requests fail, as when a network drops. Playwright proxies the traffic; the server sees a normal client.
 */
async function cuttableNetwork(page) {
  const network = { cut: false, sockets: new Set() };
  await page.route(/\/socket\.io\//, (route) => (network.cut ? route.abort("internetdisconnected") : route.continue()));
  await page.routeWebSocket(/\/socket\.io\//, (ws) => {
    if (network.cut) {
      ws.close({ code: 1006, reason: "network cut" });
      return;
    }
    const server = ws.connectToServer();
    network.sockets.add({ ws, server });
  });
  network.drop = async () => {
    network.cut = true;
    for (const { ws, server } of network.sockets) {
      await server.close().catch(() => {});
      await ws.close({ code: 1001, reason: "network cut" }).catch(() => {});
    }
    network.sockets.clear();
  };
  network.restore = () => {
    network.cut = false;
  };
  return network;
}

async function openUser(name, { cuttable = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 860, height: 620 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const network = cuttable ? await cuttableNetwork(page) : null;
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") pageErrors.push(`${name} console: ${msg.text()} (${msg.location().url})`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) pageErrors.push(`${name}: HTTP ${response.status()} for ${response.url()}`);
  });
  await page.goto(`${url}/`);
  await page.fill("#username", name);
  await page.fill("#room", room);
  await page.click("#connect-btn");
  await page.locator(`#members li[data-user="${name}"]`).waitFor();
  await page.locator("#message-input:not([disabled])").waitFor();
  return { page, network };
}

/** The textContent of every message text in the list, in order. */
const messageTexts = (page) => page.$$eval("#messages .text", (nodes) => nodes.map((n) => n.textContent));

/** Wait until a message whose text is exactly `text` is shown (confirmed, not pending). */
async function waitForMessage(page, text) {
  await page.waitForFunction(
    (wanted) =>
      [...document.querySelectorAll("#messages li.message[data-id] .text")].some((n) => n.textContent === wanted),
    text,
    { timeout: STEP_TIMEOUT_MS },
  );
}

/** The ids of the confirmed messages shown, in order. */
const confirmedIds = (page) => page.$$eval("#messages li.message[data-id]", (nodes) => nodes.map((n) => n.dataset.id));

async function send(page, text) {
  await page.fill("#message-input", text);
  await page.press("#message-input", "Enter");
}

/** Put two screenshots side by side in one PNG, rendered by the browser itself. */
async function sideBySide(leftPng, rightPng, target) {
  const page = await browser.newPage({ viewport: { width: 1740, height: 680 } });
  const img = (png) => `data:image/png;base64,${png.toString("base64")}`;
  await page.setContent(
    `<body style="margin:0;display:flex;gap:20px;padding:20px;background:#c9ced8">
       <img src="${img(leftPng)}" style="box-shadow:0 2px 10px #0004"><img src="${img(rightPng)}" style="box-shadow:0 2px 10px #0004">
     </body>`,
  );
  await page.screenshot({ path: target, fullPage: true });
  await page.close();
}

async function main() {
  console.log(`chatio page test against ${url}, screenshots in ${outDir}`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });

  let pageA;
  let pageB;
  let networkA;
  const opened = await step("two users connect and join the room", async () => {
    ({ page: pageA, network: networkA } = await openUser(alice, { cuttable: true }));
    ({ page: pageB } = await openUser(bob));
  });
  if (!opened) return;

  await step("the header shows the serving pod", async () => {
    const pod = (await pageA.textContent("#pod"))?.trim();
    if (!pod) throw new Error("#pod is empty");
    return (await pageA.isVisible("#served-by")) && (await pageA.textContent("#served-by")).includes(`served by ${pod}`);
  });

  await step("A sees B in the member list, online", () =>
    pageA.locator(`#members li[data-user="${bob}"][data-status="online"]`).waitFor(),
  );

  await step("B sees 'A is typing' while A types", async () => {
    await pageA.locator("#message-input").pressSequentially("hello bob", { delay: 20 });
    await pageB.waitForFunction((name) => document.querySelector("#typing").textContent.includes(`${name} is typing`), alice);
  });

  await step("A sends a message; both see it once, B's typing line clears", async () => {
    await pageA.press("#message-input", "Enter");
    await waitForMessage(pageB, "hello bob");
    await waitForMessage(pageA, "hello bob");
    await pageB.waitForFunction(() => document.querySelector("#typing").textContent === "");
    const countA = (await messageTexts(pageA)).filter((t) => t === "hello bob").length;
    const countB = (await messageTexts(pageB)).filter((t) => t === "hello bob").length;
    if (countA !== 1 || countB !== 1) throw new Error(`shown ${countA} times at A and ${countB} times at B`);
  });

  await step("B answers and A sees it", async () => {
    await send(pageB, "hi alice! ça va? — ünïcödé\nsecond line");
    await waitForMessage(pageA, "hi alice! ça va? — ünïcödé\nsecond line");
  });

  await step("HTML in messages is shown as literal text, never as markup", async () => {
    await send(pageA, XSS_IMG);
    await waitForMessage(pageB, XSS_IMG);
    await send(pageA, XSS_BOLD);
    await waitForMessage(pageB, XSS_BOLD);
    for (const [who, page] of [
      ["A", pageA],
      ["B", pageB],
    ]) {
      const texts = await messageTexts(page);
      if (!texts.includes(XSS_IMG) || !texts.includes(XSS_BOLD)) throw new Error(`${who} texts ${JSON.stringify(texts)}`);
      const markup = await page.evaluate(() => ({
        img: document.querySelectorAll("#messages img").length,
        bold: document.querySelectorAll("#messages b").length,
        xss: typeof window.__xss,
      }));
      if (markup.img || markup.bold || markup.xss !== "undefined") {
        throw new Error(`${who}: ${JSON.stringify(markup)}`);
      }
    }
  });

  await step("A's status change to away shows in B's member list", async () => {
    await pageA.selectOption("#status-select", "away");
    await pageB.locator(`#members li[data-user="${alice}"][data-status="away"]`).waitFor();
    const label = await pageB.textContent(`#members li[data-user="${alice}"] .member-status`);
    if (label !== "away") throw new Error(`status label ${JSON.stringify(label)}`);
    await pageA.locator(`#members li[data-user="${alice}"][data-status="away"]`).waitFor();
  });

  await step("after a network drop A reconnects, re-joins and catches up on what it missed", async () => {
    await networkA.drop();
    await pageA.locator('#conn-state[data-state="reconnecting"]').waitFor();
    await pageA.locator("#message-input[disabled]").waitFor();
    const missed = ["missed one", "missed two", "missed three"];
    for (const text of missed) {
      await send(pageB, text);
      await waitForMessage(pageB, text);
    }
    networkA.restore();
    for (const text of missed) await waitForMessage(pageA, text);
    await pageA.locator("#message-input:not([disabled])").waitFor();
    const notice = await pageA.textContent("#notice");
    if (!notice.includes("3 missed")) throw new Error(`notice ${JSON.stringify(notice)}`);
    const seqs = await pageA.$$eval("#messages li.message[data-seq]", (nodes) => nodes.map((n) => Number(n.dataset.seq)));
    const ordered = seqs.every((seq, i) => i === 0 || seq === seqs[i - 1] + 1);
    if (!ordered) throw new Error(`seqs at A after catch-up: ${JSON.stringify(seqs)}`);
    const ids = await confirmedIds(pageA);
    if (new Set(ids).size !== ids.length) throw new Error(`duplicate message ids at A: ${JSON.stringify(ids)}`);
    // The status chosen before the drop is restored on the new connection.
    await pageB.locator(`#members li[data-user="${alice}"][data-status="away"]`).waitFor();
  });

  await step("screenshots of both users saved (B typing, seen by A)", async () => {
    await pageB.locator("#message-input").pressSequentially("let me think", { delay: 10 });
    await pageA.waitForFunction((name) => document.querySelector("#typing").textContent.includes(name), bob);
    const shotA = await pageA.screenshot({ path: path.join(outDir, "user-a.png") });
    const shotB = await pageB.screenshot({ path: path.join(outDir, "user-b.png") });
    await sideBySide(shotA, shotB, path.join(outDir, "two-tabs.png"));
    await pageB.fill("#message-input", "");
    return (await readFile(path.join(outDir, "two-tabs.png"))).length > 10_000;
  });

  await step("an error ack is shown visibly (message too long)", async () => {
    await send(pageA, "y".repeat(1500));
    const error = pageA.locator('#errors li[data-code="invalid_payload"]');
    await error.waitFor({ state: "visible" });
    const text = await error.textContent();
    if (!text.includes("text")) throw new Error(`error shown as ${JSON.stringify(text)}`);
    await pageA.locator("#messages li.message.failed").waitFor();
    await pageA.screenshot({ path: path.join(outDir, "error.png") });
  });

  if (catchupMax !== null) {
    await step(`after missing more than ${catchupMax} messages A resets to the latest page`, async () => {
      await networkA.drop();
      await pageA.locator("#message-input[disabled]").waitFor();
      for (let i = 1; i <= catchupMax + 2; i++) {
        await send(pageB, `burst ${i}`);
        await waitForMessage(pageB, `burst ${i}`);
      }
      networkA.restore();
      await waitForMessage(pageA, `burst ${catchupMax + 2}`);
      await pageA.locator("#message-input:not([disabled])").waitFor();
      const notice = await pageA.textContent("#notice");
      if (!notice.includes("missed too many")) throw new Error(`notice ${JSON.stringify(notice)}`);
      const idsA = await confirmedIds(pageA);
      const idsB = await confirmedIds(pageB);
      // The latest page only: the tail of B's (complete) list.
      if (idsA.length >= idsB.length || idsA.join() !== idsB.slice(-idsA.length).join()) {
        throw new Error(`A shows ${idsA.length} of ${idsB.length} messages, not the latest page`);
      }
    });

    await step("'Load earlier messages' pages back to the whole conversation", async () => {
      const idsB = await confirmedIds(pageB);
      for (let i = 0; i < 10 && (await pageA.isVisible("#older-btn")); i++) {
        await pageA.click("#older-btn");
        await pageA.waitForFunction(() => !document.querySelector("#older-btn").disabled);
      }
      const idsA = await confirmedIds(pageA);
      if (idsA.join() !== idsB.join()) throw new Error(`A ${JSON.stringify(idsA)} vs B ${JSON.stringify(idsB)}`);
    });
  }

  await step("a narrow (phone) viewport still shows the conversation", async () => {
    await pageB.setViewportSize({ width: 390, height: 700 });
    const box = await pageB.locator("#messages").boundingBox();
    await pageB.screenshot({ path: path.join(outDir, "narrow.png") });
    if (!box || box.width > 390 || box.height < 200) throw new Error(`message list box ${JSON.stringify(box)}`);
  });

  await step("no script errors in either page", () => {
    if (pageErrors.length) throw new Error(pageErrors.join("; "));
  });
}

try {
  await main();
} catch (err) {
  failed += 1;
  console.log(`FAIL unexpected error: ${err.stack || err}`);
} finally {
  await browser?.close().catch(() => {});
  clearTimeout(deadline);
}
if (failed) {
  console.error(`FAILED: ${failed} check(s) failed`);
  process.exit(1);
}
console.log("passed: all checks");
process.exit(0);
