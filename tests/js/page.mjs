// The page as a guest, in a real browser: Debian's Chromium driven by playwright-core.
//
//   node page.mjs http://127.0.0.1:8080 /tmp/out [--catchup-max N]
//
// Two guests (one with a Korean name) join one room from its address (#room=...); checks typing, messages,
// join lines, long-polling first and then a WebSocket (and a third guest chatting over long-polling
// alone, its WebSockets blocked), presence, links, the length counter with the server's published limit, a plain-words
// error, that user text stays text, catch-up after a network drop and, with --catchup-max N (the server's
// CHATIO_CATCHUP_MAX), the `reset: true` path followed by paging back to the whole conversation. Saves
// screenshots into the output folder. Exits 0 when all checks pass, 1 on a failure, 2 on bad usage.

import { mkdirSync } from "node:fs";
import path from "node:path";
import {
  Run,
  assertNoMarkup,
  confirmedIds,
  cuttableNetwork,
  messageListShare,
  messageTexts,
  send,
  sideBySide,
  signInAsGuest,
  textContrast,
  waitComposerReady,
  waitForMessage,
} from "./pagekit.mjs";

const [url, outDir, ...options] = process.argv.slice(2);
const catchupMax = options[0] === "--catchup-max" ? Number(options[1]) : null;
if (!url || !/^https?:\/\//.test(url) || !outDir || (options.length && !(catchupMax >= 1))) {
  console.error("usage: node page.mjs <server url> <output folder> [--catchup-max N]");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const run = new Run(170_000);
const runId = Math.random().toString(36).slice(2, 7);
const room = `page-${runId}`;
const alice = `철수-${runId}`;
const bob = `bob-${runId}`;
const XSS_IMG = `<img src=x onerror="window.__xss=1">`;
const XSS_BOLD = "<b>bold</b>";

/** Which transports a page used for Socket.IO: long-polling requests, WebSockets opened. */
function watchTransports(page) {
  const seen = { polls: 0, webSockets: 0 };
  page.on("request", (request) => request.url().includes("transport=polling") && (seen.polls += 1));
  page.on("websocket", (ws) => ws.url().includes("/socket.io/") && (seen.webSockets += 1));
  return seen;
}

async function openGuest(name, { cuttable = false, blockWebSockets = false } = {}) {
  const page = await run.newPage(name, { width: 1000, height: 680 });
  const network = cuttable ? await cuttableNetwork(page) : null;
  // As behind a proxy that lets no WebSocket through: every one fails at once.
  if (blockWebSockets) await page.routeWebSocket(/\/socket\.io\//, (ws) => ws.close({ code: 1006, reason: "blocked" }));
  const transports = watchTransports(page);
  await signInAsGuest(page, url, room, name);
  return { page, network, transports };
}

async function main() {
  console.log(`chatio page test (guests) against ${url}, screenshots in ${outDir}`);
  await run.launch();
  const config = await (await fetch(`${url}/api/chat/config`)).json();

  let pageA;
  let pageB;
  let networkA;
  let transportsB;
  const opened = await run.step("two guests sign in and land in the room of the address", async () => {
    ({ page: pageA, network: networkA } = await openGuest(alice, { cuttable: true }));
    ({ page: pageB, transports: transportsB } = await openGuest(bob));
    const title = await pageA.textContent("#room-title");
    if (!title.includes(room)) throw new Error(`title ${JSON.stringify(title)}`);
  });
  if (!opened) return;

  await run.step("the user's card names the serving process", async () => {
    const text = await pageA.textContent("#me-kind");
    return text.includes("guest · served by ");
  });

  await run.step("A sees B join (a line in the conversation) and in the member list, online", async () => {
    await pageA.locator(`#members li[data-user="${bob}"][data-status="online"]`).waitFor({ state: "attached" });
    await pageA.waitForFunction((name) => [...document.querySelectorAll("#messages li.line")].some((n) => n.textContent === `${name} joined`), bob);
  });

  await run.step("B sees 'A is typing' while A types", async () => {
    await pageA.locator("#message-input").pressSequentially("hello bob", { delay: 20 });
    await pageB.waitForFunction((name) => document.querySelector("#typing").textContent.includes(`${name} is typing`), alice);
  });

  await run.step("A sends a message; both see it once, B's typing line clears", async () => {
    await pageA.press("#message-input", "Enter");
    await waitForMessage(pageB, "hello bob");
    await waitForMessage(pageA, "hello bob");
    await pageB.waitForFunction(() => document.querySelector("#typing").textContent === "");
    const countA = (await messageTexts(pageA)).filter((t) => t === "hello bob").length;
    const countB = (await messageTexts(pageB)).filter((t) => t === "hello bob").length;
    if (countA !== 1 || countB !== 1) throw new Error(`shown ${countA} times at A and ${countB} times at B`);
  });

  await run.step("B answers in Korean on two lines and A sees it", async () => {
    await send(pageB, "안녕하세요, 철수 씨! ça va?\n둘째 줄");
    await waitForMessage(pageA, "안녕하세요, 철수 씨! ça va?\n둘째 줄");
  });

  await run.step("the page connects over long-polling first, then upgrades to a WebSocket", async () => {
    if (transportsB.polls < 1 || transportsB.webSockets < 1) throw new Error(`B: ${JSON.stringify(transportsB)}`);
  });

  await run.step("a guest whose WebSockets are blocked (as by a proxy) chats over long-polling", async () => {
    const carol = `carol-${runId}`;
    const { page: pageC, transports } = await openGuest(carol, { blockWebSockets: true });
    await send(pageC, "hello over polling");
    await waitForMessage(pageA, "hello over polling");
    await send(pageA, "polling answered");
    await waitForMessage(pageC, "polling answered");
    await waitForMessage(pageC, "hello over polling");
    if (transports.polls < 2) throw new Error(`C: ${JSON.stringify(transports)}`);
    run.pages.delete(carol);
    await pageC.context().close();
  });

  await run.step("an http(s) link is clickable (noopener noreferrer); nothing else becomes a link", async () => {
    const text = "docs at https://example.com/a?b=1. and javascript:alert(1) and www.example.org";
    await send(pageA, text);
    await waitForMessage(pageB, text);
    const links = await pageB.$$eval("#messages .text a", (nodes) => nodes.map((a) => [a.href, a.rel, a.target]));
    const want = [["https://example.com/a?b=1", "noopener noreferrer", "_blank"]];
    if (JSON.stringify(links) !== JSON.stringify(want)) throw new Error(`links ${JSON.stringify(links)}`);
  });

  await run.step("HTML in messages is shown as literal text, never as markup", async () => {
    await send(pageA, XSS_IMG);
    await waitForMessage(pageB, XSS_IMG);
    await send(pageA, XSS_BOLD);
    await waitForMessage(pageB, XSS_BOLD);
    await waitForMessage(pageA, XSS_BOLD);
    for (const [who, page] of [["A", pageA], ["B", pageB]]) {
      const texts = await messageTexts(page);
      if (!texts.includes(XSS_IMG) || !texts.includes(XSS_BOLD)) throw new Error(`${who} texts ${JSON.stringify(texts)}`);
      await assertNoMarkup(page, who);
    }
  });

  await run.step("A's status change to away shows in B's member list", async () => {
    await pageA.selectOption("#status-select", "away");
    await pageB.locator(`#members li[data-user="${alice}"][data-status="away"]`).waitFor({ state: "attached" });
    const label = await pageB.textContent(`#members li[data-user="${alice}"] .member-status`);
    if (label !== "Away") throw new Error(`status label ${JSON.stringify(label)}`);
  });

  await run.step(`the counter shows the server's limit (${config.messageMaxLength}); an over-long message is not sent`, async () => {
    const max = config.messageMaxLength;
    await pageA.fill("#message-input", "가".repeat(max));
    const atLimit = await pageA.textContent("#counter");
    if (!atLimit.includes(`${max.toLocaleString("en")} / ${max.toLocaleString("en")}`) || (await pageA.isDisabled("#send-btn"))) {
      throw new Error(`at the limit: ${JSON.stringify(atLimit)}`);
    }
    await pageA.fill("#message-input", "가".repeat(max + 200));
    const over = await pageA.textContent("#counter");
    if (!over.includes("200 too many") || !(await pageA.isDisabled("#send-btn"))) throw new Error(`over: ${JSON.stringify(over)}`);
    await pageA.press("#message-input", "Enter");
    await pageA.waitForTimeout(300);
    if (await pageA.locator("#messages li[data-pending]").count()) throw new Error("an over-long message was sent");
    await pageA.screenshot({ path: path.join(outDir, "counter.png") });
    await pageA.fill("#message-input", "");
  });

  await run.step("replying with a long text: the length counter does not cover the reply bar", async () => {
    const last = pageA.locator("#messages li.message[data-id]").last();
    await last.hover();
    // The action bar stays within its own message: it never covers the line above (a "Seen by").
    const [barBox, itemBox] = [await last.locator(".actions").boundingBox(), await last.boundingBox()];
    if (barBox.y < itemBox.y) throw new Error(`the action bar (top ${barBox.y}) reaches above its message (${itemBox.y})`);
    await last.locator(".act-reply").click();
    await pageA.fill("#message-input", "가".repeat(config.messageMaxLength));
    const bar = await pageA.locator("#compose-bar").boundingBox();
    const counter = await pageA.locator("#counter").boundingBox();
    if (counter.y < bar.y + bar.height) throw new Error(`counter ${JSON.stringify(counter)} over the bar ${JSON.stringify(bar)}`);
    await pageA.fill("#message-input", "");
    await pageA.click("#compose-cancel");
    await pageA.locator("#compose-bar").waitFor({ state: "hidden" });
  });

  await run.step("the accent on an own, hovered message keeps 4.5:1 (WCAG AA), light and dark", async () => {
    await pageA.locator("#messages li.message.mine").last().hover();
    for (const colorScheme of ["light", "dark"]) {
      await pageA.emulateMedia({ colorScheme });
      const ratio = await textContrast(pageA, "#messages li.message.mine:hover .author");
      if (!(ratio >= 4.5)) throw new Error(`${colorScheme}: ${ratio.toFixed(2)}:1`);
    }
    await pageA.emulateMedia({ colorScheme: "light" });
  });

  await run.step("a refused command is shown in plain words (a room name with a space)", async () => {
    await pageA.click("#new-room-btn");
    await pageA.fill("#new-room-name", "not a name");
    await pageA.click('#new-room-form button[type="submit"]');
    const error = pageA.locator("#new-room-error");
    await error.waitFor({ state: "visible" });
    const text = await error.textContent();
    if (!text.startsWith("That was not accepted") || !text.includes("room")) throw new Error(`error ${JSON.stringify(text)}`);
    await pageA.keyboard.press("Escape");
  });

  await run.step("after a network drop A reconnects, re-joins and catches up on what it missed", async () => {
    const dropped = Date.now();
    await networkA.drop();
    await pageA.locator('#conn-state[data-state="reconnecting"]').waitFor();
    await pageA.locator("#message-input[disabled]").waitFor();
    const placeholder = await pageA.getAttribute("#message-input", "placeholder");
    if (placeholder !== "Waiting for the connection…") throw new Error(`placeholder ${JSON.stringify(placeholder)}`);
    const banner = await pageA.textContent("#notice");
    if (!banner.includes("Connection lost. Reconnecting")) throw new Error(`banner ${JSON.stringify(banner)}`);
    // A leave shows at once (it may be a real one).
    await pageB.locator("#messages li.line", { hasText: `${alice} left` }).waitFor();
    const missed = ["missed one", "missed two", "missed three"];
    for (const text of missed) {
      await send(pageB, text);
      await waitForMessage(pageB, text);
    }
    networkA.restore();
    for (const text of missed) await waitForMessage(pageA, text, 20_000);
    await waitComposerReady(pageA);
    await pageA.locator('#conn-state[data-state="connected"]').waitFor();
    await pageA.locator('#notice:has-text("3 missed")').waitFor();
    const seqs = await pageA.$$eval("#messages li.message[data-seq]", (nodes) => nodes.map((n) => Number(n.dataset.seq)));
    if (!seqs.every((seq, i) => i === 0 || seq === seqs[i - 1] + 1)) throw new Error(`seqs at A: ${JSON.stringify(seqs)}`);
    const ids = await confirmedIds(pageA);
    if (new Set(ids).size !== ids.length) throw new Error(`duplicate message ids at A: ${JSON.stringify(ids)}`);
    // The status chosen before the drop is restored on the new connection.
    await pageB.locator(`#members li[data-user="${alice}"][data-status="away"]`).waitFor({ state: "attached" });
    // A blip of a few seconds: B's "left" line is taken back when A returns, and no "joined" line comes.
    const blip = Date.now() - dropped;
    if (blip < 8_000) {
      const gone = (texts) => ![...document.querySelectorAll("#messages li.line")].some((n) => texts.includes(n.textContent));
      await pageB.waitForFunction(gone, [`${alice} left`, `${alice} joined`], { timeout: 10_000 });
    } else console.log(`  (the blip took ${blip} ms: too long to expect its lines taken back)`);
  });

  await run.step("screenshots of both users saved (B typing, seen by A)", async () => {
    await pageB.locator("#message-input").pressSequentially("let me think", { delay: 10 });
    await pageA.waitForFunction((name) => document.querySelector("#typing").textContent.includes(name), bob);
    const shotA = await pageA.screenshot({ path: path.join(outDir, "user-a.png") });
    const shotB = await pageB.screenshot({ path: path.join(outDir, "user-b.png") });
    await sideBySide(run.browser, [shotA, shotB], path.join(outDir, "two-tabs.png"));
    await pageB.fill("#message-input", "");
  });

  if (catchupMax !== null) {
    await run.step(`after missing more than ${catchupMax} messages A resets to the latest page`, async () => {
      await networkA.drop();
      await pageA.locator("#message-input[disabled]").waitFor();
      for (let i = 1; i <= catchupMax + 2; i++) {
        await send(pageB, `burst ${i}`);
        await waitForMessage(pageB, `burst ${i}`);
      }
      networkA.restore();
      await waitForMessage(pageA, `burst ${catchupMax + 2}`, 20_000);
      await waitComposerReady(pageA);
      await pageA.locator('#notice:has-text("missed many")').waitFor();
      // The latest page replaced what A held (then, as it does not fill the view, older pages follow).
      const idsA = await confirmedIds(pageA);
      const idsB = await confirmedIds(pageB);
      if (idsA.join() !== idsB.slice(-idsA.length).join()) throw new Error(`A's messages are not B's latest ones`);
    });

    await run.step("'Load earlier messages' pages back to the whole conversation", async () => {
      const idsB = await confirmedIds(pageB);
      for (let i = 0; i < 20 && (await confirmedIds(pageA)).length < idsB.length; i++) {
        if (await pageA.isVisible("#older-btn:not([disabled])")) await pageA.click("#older-btn", { timeout: 2_000 }).catch(() => {});
        await pageA.waitForTimeout(200);
      }
      const idsA = await confirmedIds(pageA);
      if (idsA.join() !== idsB.join()) throw new Error(`A ${idsA.length} vs B ${idsB.length} messages`);
    });
  }

  await run.step("the keyboard alone: skip link, send, a new room from its dialog, Alt+Up back, Escape", async () => {
    const focused = () => pageB.evaluate(() => document.activeElement?.id || document.activeElement?.className);
    const first = await pageB.evaluate(() => document.querySelector("a[href], button, input, select, textarea").className);
    if (first !== "skip-link") throw new Error(`the first focusable element is ${first}`);
    await pageB.focus(".skip-link");
    await pageB.keyboard.press("Enter");
    await pageB.waitForFunction(() => document.activeElement?.id === "message-input");
    await pageB.keyboard.type("typed with the keyboard only");
    await pageB.keyboard.press("Enter");
    await waitForMessage(pageA, "typed with the keyboard only");
    // Shift+Tab walks back from the message box through the conversation to the sidebar's buttons.
    for (let i = 0; i < 40 && (await focused()) !== "new-room-btn"; i++) await pageB.keyboard.press("Shift+Tab");
    if ((await focused()) !== "new-room-btn") throw new Error("the create-room button is not reachable by Tab");
    await pageB.keyboard.press("Enter");
    await pageB.locator("#new-room-dialog[open]").waitFor();
    await pageB.keyboard.type(`keys-${runId}`);
    await pageB.keyboard.press("Enter");
    await pageB.locator(`#room-list li[data-room="keys-${runId}"] a[aria-current="page"]`).waitFor();
    await pageB.keyboard.press("Alt+ArrowUp");
    await pageB.locator(`#room-list li[data-room="${room}"] a[aria-current="page"]`).waitFor();
    await pageB.click("#new-room-btn");
    await pageB.locator("#new-room-dialog[open]").waitFor();
    await pageB.keyboard.press("Escape");
    await pageB.locator("#new-room-dialog:not([open])").waitFor({ state: "attached" });
  });

  await run.step("at 360 px the message list keeps at least 60 % of the height", async () => {
    await pageB.setViewportSize({ width: 360, height: 640 });
    await pageB.waitForTimeout(300);
    await pageB.screenshot({ path: path.join(outDir, "narrow.png") });
    const share = await messageListShare(pageB);
    const wide = await pageB.evaluate(() => document.documentElement.scrollWidth);
    if (share < 0.6 || wide > 360) throw new Error(`message list ${Math.round(share * 100)} % of the height, page ${wide} px wide`);
  });

  await run.step("a phone's drawer keeps Tab inside it; Escape closes it and focus returns to its button", async () => {
    await pageB.focus("#menu-btn");
    await pageB.keyboard.press("Enter");
    await pageB.locator('body[data-drawer="sidebar"]').waitFor({ state: "attached" });
    for (let i = 0; i < 25; i++) {
      await pageB.keyboard.press("Tab");
      const where = await pageB.evaluate(() => (document.activeElement?.closest("#sidebar") ? "sidebar" : document.activeElement?.id || document.activeElement?.tagName));
      if (where !== "sidebar" && where !== "BODY" && where !== "HTML") throw new Error(`Tab left the open drawer for ${where}`);
    }
    await pageB.keyboard.press("Escape");
    await pageB.locator("body:not([data-drawer])").waitFor({ state: "attached" });
    await pageB.waitForFunction(() => document.activeElement?.id === "menu-btn");
    if (await pageB.evaluate(() => document.getElementById("conversation").inert)) throw new Error("the conversation stayed inert");
  });

  await run.step("search on a phone: the search button opens a box; results cover an inert conversation; Escape", async () => {
    await pageB.click("#search-toggle");
    await pageB.locator("#search-input-2").waitFor({ state: "visible" });
    await pageB.fill("#search-input-2", "hello bob");
    await pageB.press("#search-input-2", "Enter");
    await pageB.locator("#search-results li").first().waitFor();
    await pageB.screenshot({ path: path.join(outDir, "narrow-search.png") });
    if (!(await pageB.evaluate(() => document.getElementById("composer").inert))) throw new Error("the composer is not inert");
    await pageB.keyboard.press("Escape");
    await pageB.locator("#search-panel").waitFor({ state: "hidden" });
    await pageB.waitForFunction(() => document.activeElement?.id === "message-input");
  });

  await run.step("search on a wide screen: one search box (the top bar's), the words found marked; Escape closes the results", async () => {
    await pageA.fill("#search-input", "hello bob");
    await pageA.press("#search-input", "Enter");
    await pageA.locator("#search-results li").first().waitFor();
    if (await pageA.isVisible("#search-input-2")) throw new Error("a second search box is shown");
    const hits = await pageA.$$eval("#search-results .result-text mark.hit", (nodes) => nodes.map((n) => n.textContent));
    if (!hits.length || hits.some((hit) => hit.toLowerCase() !== "hello bob")) throw new Error(`marked ${JSON.stringify(hits)}`);
    await pageA.press("#search-input", "Escape");
    await pageA.locator("#search-panel").waitFor({ state: "hidden" });
    if (await pageA.evaluate(() => document.getElementById("composer").inert)) throw new Error("the composer stayed inert");
  });

  await run.step("no script errors in either page", () => {
    if (run.pageErrors.length) throw new Error(run.pageErrors.join("; "));
  });
}

await run.finish(main);
