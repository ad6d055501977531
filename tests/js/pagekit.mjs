// Shared by the browser tests (page.mjs, page_accounts.mjs): Debian's Chromium through playwright-core,
// named checks, pages that record script errors, a switch that cuts one page's network.

import { chromium } from "playwright-core";

export const STEP_TIMEOUT_MS = 10_000;
/** Signing in and the first join: a cold page, several requests, a loaded machine. */
export const SIGNIN_TIMEOUT_MS = 30_000;
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

export class Run {
  constructor(deadlineMs) {
    this.failed = 0;
    this.pageErrors = [];
    this.browser = null;
    this.pages = new Map(); // name -> page, described after a failed check
    this.deadline = setTimeout(async () => {
      console.error(`FAIL run did not finish within ${deadlineMs / 1000} s`);
      await this.browser?.close().catch(() => {});
      process.exit(1);
    }, deadlineMs);
  }

  async launch() {
    this.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  }

  /** Run one named check; a thrown error or a false result is a failure. Returns whether it passed. */
  async step(name, body) {
    try {
      const result = await body();
      if (result === false) throw new Error("condition was false");
      console.log(`ok   ${name}`);
      return true;
    } catch (err) {
      this.failed += 1;
      console.log(`FAIL ${name}: ${String(err.message || err).split("\n")[0]}`);
      for (const [who, page] of this.pages) {
        const state = await describePage(page).catch((e) => `(not described: ${e.message})`);
        console.log(`     ${who}: ${state}`);
      }
      return false;
    }
  }

  /** A page in its own browser context (its own storage), recording script errors and HTTP failures. */
  async newPage(name, { width = 1200, height = 760, colorScheme = "light", allowHttpErrors = [] } = {}) {
    const context = await this.browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1, colorScheme });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    this.pages.set(name, page);
    page.on("pageerror", (err) => this.pageErrors.push(`${name}: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      const text = msg.text();
      // A failed request is reported below with its status; the console repeats it.
      if (/Failed to load resource|WebSocket connection to .* failed/.test(text)) return;
      this.pageErrors.push(`${name} console: ${text} (${msg.location().url})`);
    });
    page.on("response", (response) => {
      const status = response.status();
      if (status >= 400 && !allowHttpErrors.some((allowed) => allowed(response))) {
        this.pageErrors.push(`${name}: HTTP ${status} for ${response.url()}`);
      }
    });
    return page;
  }

  async finish(main) {
    try {
      await main();
    } catch (err) {
      this.failed += 1;
      console.log(`FAIL unexpected error: ${err.stack || err}`);
    } finally {
      await this.browser?.close().catch(() => {});
      clearTimeout(this.deadline);
    }
    if (this.failed) {
      console.error(`FAILED: ${this.failed} check(s) failed`);
      process.exit(1);
    }
    console.log("passed: all checks");
    process.exit(0);
  }
}

/** What a page shows: connection, banner, toasts and the last lines of the conversation. */
function describePage(page) {
  return page.evaluate(() => {
    const text = (selector) => [...document.querySelectorAll(selector)].map((n) => n.textContent.trim()).join(" | ");
    const lines = [...document.querySelectorAll("#messages li")].slice(-6).map((n) => n.textContent.trim().slice(0, 60));
    return JSON.stringify({
      conn: text("#conn-state"),
      notice: text("#notice"),
      toasts: text("#errors li"),
      room: text("#room-title"),
      last: lines,
    });
  });
}

/**
 * A switch for one page's Socket.IO traffic: while `cut`, its WebSockets are closed and its polling
 * requests fail, as when a network drops. Playwright proxies the traffic; the server sees a normal client.
 */
export async function cuttableNetwork(page) {
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

/** The textContent of every confirmed message text in the open room, in order. */
export const messageTexts = (page) =>
  page.$$eval("#messages li.message[data-id] .text", (nodes) => nodes.map((n) => n.textContent));

/** Wait until a confirmed message whose text is exactly `text` is shown. */
export async function waitForMessage(page, text, timeout = STEP_TIMEOUT_MS) {
  await page.waitForFunction(
    (wanted) =>
      [...document.querySelectorAll("#messages li.message[data-id] .text")].some((n) => n.textContent === wanted),
    text,
    { timeout },
  );
}

/** The ids of the confirmed messages shown, in order. */
export const confirmedIds = (page) =>
  page.$$eval("#messages li.message[data-id]", (nodes) => nodes.map((n) => n.dataset.id));

export async function send(page, text) {
  await page.fill("#message-input", text);
  await page.press("#message-input", "Enter");
}

export async function waitComposerReady(page, timeout = STEP_TIMEOUT_MS) {
  await page.locator("#message-input:not([disabled])").waitFor({ timeout });
}

/** Sign in as the guest `name` from the address of `room`; resolves once the page is in the room. */
export async function signInAsGuest(page, url, room, name) {
  await page.goto(`${url}/#room=${encodeURIComponent(room)}`);
  await page.locator('#tab-guest[aria-selected="true"]').waitFor();
  await page.fill("#username", name);
  await page.click("#signin-btn");
  await page.locator(`#members li[data-user="${name}"]`).waitFor({ state: "attached", timeout: SIGNIN_TIMEOUT_MS });
  await waitComposerReady(page, SIGNIN_TIMEOUT_MS);
}

/** No element made from user text: no <img>, <b> or <script> in the chat, no global set by a payload. */
export async function assertNoMarkup(page, who) {
  const markup = await page.evaluate(() => ({
    img: document.querySelectorAll("#shell img:not([src='favicon.svg'])").length,
    bold: document.querySelectorAll("#shell b").length,
    script: document.querySelectorAll("body script").length,
    xss: typeof window.__xss,
  }));
  if (markup.img || markup.bold || markup.script || markup.xss !== "undefined") {
    throw new Error(`${who}: user text became markup ${JSON.stringify(markup)}`);
  }
}

/** The share of the viewport's height that the message list (the scroller) takes. */
export async function messageListShare(page) {
  return page.evaluate(() => document.getElementById("scroller").getBoundingClientRect().height / window.innerHeight);
}

/** Put screenshots side by side in one PNG, rendered by the browser itself. */
export async function sideBySide(browser, pngs, target, width = 1740, height = 800) {
  const page = await browser.newPage({ viewport: { width, height } });
  const img = (png) => `data:image/png;base64,${png.toString("base64")}`;
  await page.setContent(
    `<body style="margin:0;display:flex;gap:20px;padding:20px;background:#c9ced8;align-items:flex-start">${pngs
      .map((png) => `<img src="${img(png)}" style="box-shadow:0 2px 10px #0004">`)
      .join("")}</body>`,
  );
  await page.screenshot({ path: target, fullPage: true });
  await page.close();
}

/**
 * Delete the signed-in account from the account dialog (the sidebar must be showing): the confirmation
 * names the account; the page returns to the sign-in form. `screenshot`: where to save the confirmation.
 */
export async function deleteOwnAccount(page, username, screenshot = null) {
  await page.click("#account-btn");
  await page.click("#delete-account-btn");
  await page.locator("#delete-dialog[open]").waitFor();
  const heading = await page.textContent("#delete-heading");
  if (!heading.includes(username)) throw new Error(`the confirmation says ${JSON.stringify(heading)}`);
  if (screenshot) await page.screenshot({ path: screenshot });
  await page.click("#delete-submit");
  await page.locator("#signin:not([hidden])").waitFor();
  if (await page.locator("dialog[open]").count()) throw new Error("a dialog stayed open over the sign-in form");
}

/** Every Socket.IO frame a page sends over WebSocket and every WebSocket it saw close. */
export function watchSockets(page) {
  const seen = { sent: [], closed: 0 };
  page.on("websocket", (ws) => {
    ws.on("framesent", (frame) => seen.sent.push(String(frame.payload)));
    ws.on("close", () => {
      seen.closed += 1;
    });
  });
  return seen;
}

/**
 * REST calls refused 401 because their access token expired meanwhile (its renewal was due while a
 * process died): the page renews and repeats them (auth.js api()). Each is allowed only when its repeat
 * is answered: every such URL must see a success after its 401.
 */
export class RenewedCalls {
  constructor(base) {
    this.base = base;
    this.pending = new Map(); // page name -> URLs refused 401 and not answered since
  }

  /** An `allowHttpErrors` entry for the page `name`. */
  allow(name) {
    const pending = new Set();
    this.pending.set(name, pending);
    return (response) => {
      const rest = response.url().startsWith(`${this.base}/api/chat/`) && !response.url().includes("/api/chat/auth/");
      if (!rest || response.status() !== 401) return false;
      pending.add(response.url());
      return true;
    };
  }

  watch(name, page) {
    page.on("response", (response) => {
      if (response.ok()) this.pending.get(name)?.delete(response.url());
    });
  }

  /** Stop holding `name`'s refused calls against it (its account is gone: nothing is repeated). */
  forget(name) {
    this.pending.delete(name);
  }

  unanswered() {
    return [...this.pending].flatMap(([name, urls]) => [...urls].map((u) => `${name}: HTTP 401 for ${u}, never repeated`));
  }
}

/**
 * The WCAG contrast ratio of the text of `selector` (its first match) against what is behind it: the
 * backgrounds of it and its ancestors, translucent ones (a hover tint) laid over those beneath.
 */
export function textContrast(page, selector) {
  return page.$eval(selector, (node) => {
    const rgba = (css) => {
      const [r, g, b, a = 1] = css.match(/[\d.]+/g).map(Number);
      return [r, g, b, css.includes("/") || css.startsWith("rgba") ? a : 1];
    };
    const layers = [];
    for (let at = node; at; at = at.parentElement) layers.unshift(rgba(getComputedStyle(at).backgroundColor));
    let under = [255, 255, 255];
    for (const [r, g, b, a] of layers) under = [r, g, b].map((c, i) => c * a + under[i] * (1 - a));
    const luminance = (rgb) =>
      rgb
        .map((c) => c / 255)
        .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
        .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
    const [fg, bg] = [luminance(rgba(getComputedStyle(node).color).slice(0, 3)), luminance(under)];
    return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  });
}
