// The page with accounts, in a real browser, against several chatio processes behind HAProxy with Redis
// and MongoDB (tests/e2e/test_page.py starts them):
//
//   node page_accounts.mjs http://127.0.0.1:8080 /tmp/out --pods pod-1=1234,pod-2=1235
//
// Against `make cluster` (guests allowed there; the test's limits make a run take seconds, not minutes):
//
//   CHATIO_RATE_LIMIT_PER_MINUTE=1000 CHATIO_AUTH_RATE_PER_MINUTE=1000 CHATIO_HISTORY_PAGE_SIZE=5 \
//     CHATIO_MESSAGE_MAX_LENGTH=300 CHATIO_ACCESS_TOKEN_TTL_SECONDS=20 make cluster
//   node page_accounts.mjs http://127.0.0.1:8080 /tmp/out --pods \
//     "$(.venv/bin/python -m tools.devcluster status | awk '/^chatio-/{printf "%s%s=%s", s, $1, $2; s=","}')"
//
// Two users register (a Korean username; display names with HTML in them), log out and in, create a
// private room, invite (one accepted, one declined), chat in Korean, open a direct message from the member
// list (an unread marker), search and follow a result to its room, scroll history back page by page,
// reload (the session and the open room stay), outlive their access token (renewed with refresh_session),
// survive the SIGKILL of the process serving one of them, and B deletes its account. Screenshots: desktop
// and 360 px, light and dark. Exits 0 when all checks pass, 1 on a failure, 2 on bad usage.

import { mkdirSync } from "node:fs";
import path from "node:path";
import {
  RenewedCalls,
  Run,
  SIGNIN_TIMEOUT_MS,
  assertNoMarkup,
  confirmedIds,
  deleteOwnAccount,
  messageListShare,
  send,
  sideBySide,
  waitComposerReady,
  waitForMessage,
  watchSockets,
} from "./pagekit.mjs";

const [url, outDir, flag, podList, adminFlag, adminName] = process.argv.slice(2);
const pods = new Map((podList || "").split(",").filter(Boolean).map((pair) => pair.split("=")));
if (!url || !/^https?:\/\//.test(url) || !outDir || flag !== "--pods" || pods.size < 2 || (adminFlag && adminFlag !== "--admin")) {
  console.error("usage: node page_accounts.mjs <balancer url> <output folder> --pods name=pid,name=pid [--admin username]");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const run = new Run(280_000);
const runId = Math.random().toString(36).slice(2, 7);
const PASSWORD = "correct horse battery";
const XSS_NAME = `<img src=x onerror="window.__xss=1">지은`;
const alice = { username: `지은-${runId}`, displayName: XSS_NAME };
const bob = { username: `minho-${runId}`, displayName: "Minho <b>K</b>" };
const room = `비밀-${runId}`;
const declined = `closed-${runId}`;
const shot = (name) => path.join(outDir, name);
// A wrong password is refused (401): expected where the test types one.
const expected401 = (response) => response.url().endsWith("/api/chat/auth/login") && response.status() === 401;
// REST calls refused 401 while a process died, renewed and repeated by the page (checked at the end).
const renewed = new RenewedCalls(url);
// After the kill, the surviving process does not know the dead one's Engine.IO session: 400, then a new one.
const staleSession = (response) => response.url().includes("/socket.io/") && response.url().includes("sid=") && response.status() === 400;

async function register(page, user) {
  await page.goto(`${url}/`);
  await page.click("#tab-register");
  await page.fill("#username", user.username);
  await page.fill("#display-name", user.displayName);
  await page.fill("#password", PASSWORD);
  await page.click("#signin-btn");
  await page.locator("#shell:not([hidden])").waitFor({ timeout: SIGNIN_TIMEOUT_MS });
  await page.locator('#conn-state[data-state="connected"]').waitFor({ timeout: SIGNIN_TIMEOUT_MS });
}

const servedBy = async (page) => (await page.textContent("#me-kind")).match(/served by (\S+)/)?.[1];

async function main() {
  console.log(`chatio page test (accounts, ${pods.size} processes) against ${url}, screenshots in ${outDir}`);
  await run.launch();
  const config = await (await fetch(`${url}/api/chat/config`)).json();
  const pageA = await run.newPage("A", { allowHttpErrors: [expected401, staleSession, renewed.allow("A")] });
  const pageB = await run.newPage("B", { colorScheme: "dark", allowHttpErrors: [staleSession, renewed.allow("B")] });
  renewed.watch("A", pageA);
  renewed.watch("B", pageB);
  const socketsA = watchSockets(pageA);

  const ready = await run.step("a guest tab only where guests are allowed; both users register", async () => {
    await pageA.goto(`${url}/`);
    await pageA.locator("#tab-login").waitFor();
    if (config.allowGuests) await pageA.locator("#tab-guest").waitFor(); // make cluster: guests allowed
    else if (await pageA.isVisible("#tab-guest")) throw new Error("a guest tab on a server without guests");
    await pageA.screenshot({ path: shot("signin.png") });
    await register(pageA, alice);
    await register(pageB, bob);
  });
  if (!ready) return;

  await run.step("a display name with HTML in it is shown as text", async () => {
    const name = await pageA.textContent("#me-name");
    if (name !== XSS_NAME) throw new Error(`card shows ${JSON.stringify(name)}`);
    await assertNoMarkup(pageA, "A");
  });

  await run.step("log out, then log in again with the password", async () => {
    const refreshToken = await pageA.evaluate(() => JSON.parse(sessionStorage.getItem("chatio.session")).refreshToken);
    await pageA.click("#signout-btn");
    await pageA.locator("#signin:not([hidden])").waitFor();
    const kept = await pageA.evaluate(() => [sessionStorage.getItem("chatio.session"), JSON.stringify(localStorage)]);
    if (kept[0] !== null || kept[1].includes(refreshToken)) throw new Error("the tokens outlived the logout");
    const reuse = await fetch(`${url}/api/chat/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refreshToken }),
    });
    if (reuse.status !== 401) throw new Error(`the logged-out refresh token answered ${reuse.status}`);
    await pageA.click("#tab-login");
    await pageA.fill("#username", alice.username);
    await pageA.fill("#password", "wrong password");
    await pageA.click("#signin-btn");
    await pageA.locator("#signin-error:not([hidden])").waitFor();
    await pageA.fill("#password", PASSWORD);
    await pageA.click("#signin-btn");
    await pageA.locator('#conn-state[data-state="connected"]').waitFor();
    const stored = await pageA.evaluate(() => JSON.stringify(localStorage));
    if (stored.includes("refreshToken") || stored.includes("accessToken")) throw new Error("tokens in localStorage");
  });

  await run.step("A creates a private room (a Korean id) and invites B; B accepts from the sidebar", async () => {
    await pageA.click("#new-room-btn");
    await pageA.fill("#new-room-name", room);
    await pageA.check("#new-room-private");
    await pageA.click('#new-room-form button[type="submit"]');
    await pageA.locator(`#room-list li[data-room="${room}"] a[aria-current="page"]`).waitFor();
    const sub = await pageA.textContent("#room-sub");
    if (!sub.startsWith("Private room")) throw new Error(`subtitle ${JSON.stringify(sub)}`);
    await pageA.click("#invite-btn");
    await pageA.fill("#invite-name", bob.username);
    await pageA.press("#invite-name", "Enter");
    await pageA.locator("#invite-dialog:not([open])").waitFor({ state: "attached" });
    // The line and the toast name both users by their display names (as text) and the room by its name.
    await pageA.locator("#messages li.line", { hasText: `${alice.displayName} invited ${bob.displayName}` }).waitFor();
    await pageB.locator("#errors .toast.info", { hasText: `${alice.displayName} invited you to ${room}.` }).waitFor();
    await pageB.locator(`#invitations li[data-room="${room}"]`).waitFor();
    await pageB.screenshot({ path: shot("invitation-dark.png") });
    await pageB.click(`#invitations li[data-room="${room}"] button:has-text("Accept")`);
    await pageB.locator(`#room-list li[data-room="${room}"] a[aria-current="page"]`).waitFor();
    await pageA.locator(`#members li[data-user="${bob.username}"]`).waitFor();
  });

  await run.step("an invitation declined: the inviter is told", async () => {
    await pageA.click("#new-room-btn");
    await pageA.fill("#new-room-name", declined);
    await pageA.check("#new-room-private");
    await pageA.click('#new-room-form button[type="submit"]');
    await pageA.locator(`#room-list li[data-room="${declined}"]`).waitFor();
    await pageA.click("#invite-btn");
    await pageA.fill("#invite-name", bob.username);
    await pageA.press("#invite-name", "Enter");
    await pageB.click(`#invitations li[data-room="${declined}"] button:has-text("Decline")`);
    await pageA.locator("#errors .toast", { hasText: `${bob.displayName} declined your invitation to ${declined}.` }).waitFor();
    if (await pageB.locator(`#room-list li[data-room="${declined}"]`).count()) throw new Error("declined room listed");
    await pageA.click(`#room-list li[data-room="${room}"] a`);
  });

  await run.step("Korean text both ways, with typing", async () => {
    await pageB.locator("#message-input").pressSequentially("안녕", { delay: 30 });
    await pageA.waitForFunction(() => document.querySelector("#typing").textContent.includes("is typing"));
    await pageB.fill("#message-input", "");
    await send(pageB, "안녕하세요 지은 씨, 오늘 바나나우유 어때요?");
    await waitForMessage(pageA, "안녕하세요 지은 씨, 오늘 바나나우유 어때요?");
    await send(pageA, "좋아요! 👍 https://example.com/우유");
    await waitForMessage(pageB, "좋아요! 👍 https://example.com/우유");
  });

  await run.step("who is online: each sees the other in the sidebar, with their status", async () => {
    await pageA.locator(`#online-list li[data-user="${bob.username}"] .dot[data-status="online"]`).waitFor({ state: "attached" });
    await pageB.locator(`#online-list li[data-user="${alice.username}"]`).waitFor({ state: "attached" });
  });

  await run.step("display names (from the profiles), with HTML in them, are shown as text", async () => {
    const author = pageB.locator("#messages li.message[data-id] .author", { hasText: "onerror" }).first();
    await author.waitFor();
    const text = await author.textContent();
    if (text !== XSS_NAME) throw new Error(`author shown as ${JSON.stringify(text)}`);
    await pageA.locator(`#members li[data-user="${bob.username}"] .member-name:text-is("${bob.displayName}")`).waitFor();
    await assertNoMarkup(pageA, "A");
    await assertNoMarkup(pageB, "B");
  });

  await run.step("B replies to A and reacts; A edits its message; B deletes its reply; both see it all", async () => {
    const liked = "좋아요! 👍 https://example.com/우유";
    const messageB = (text) => pageB.locator("#messages li.message[data-id]", { has: pageB.locator(".text", { hasText: text }) });
    const messageA = (text) => pageA.locator("#messages li.message[data-id]", { has: pageA.locator(".text", { hasText: text }) });
    await messageB(liked).focus();
    await messageB(liked).locator(".act-reply").click();
    await pageB.locator('#compose-bar:not([hidden]) #compose-what:has-text("Replying to")').waitFor();
    await send(pageB, "답장이에요");
    await messageA("답장이에요").locator(".quote", { hasText: "지은" }).waitFor();
    await messageA(liked).locator('.reply-count:text-is("1 reply")').waitFor();
    await messageB(liked).focus();
    await messageB(liked).locator(".act-react").click();
    await messageB(liked).locator('button[aria-label="React with 👍"]').click();
    await messageA(liked).locator('.reaction:has-text("👍 1")').waitFor();
    await pageA.focus("#message-input");
    await pageA.press("#message-input", "ArrowUp"); // edits the last own message
    await pageA.locator('#compose-what:has-text("Editing")').waitFor();
    await pageA.fill("#message-input", "좋아요!! 고쳤어요");
    await pageA.press("#message-input", "Enter");
    await messageB("좋아요!! 고쳤어요").locator(".edited").waitFor();
    pageB.once("dialog", (dialog) => dialog.accept());
    await messageB("답장이에요").focus();
    await messageB("답장이에요").locator(".act-delete").click();
    await pageA.locator('#messages .text.deleted:text("This message was deleted.")').waitFor();
  });

  await run.step("read receipts: A sees that B has read its message", async () => {
    await pageA.locator("#messages li.seen", { hasText: `Seen by ${bob.displayName}` }).waitFor();
  });

  await run.step("the owner turns read receipts off in the room's settings: B no longer sees that A read", async () => {
    const receipts = async (on) => {
      await pageA.click("#settings-btn");
      await pageA.setChecked("#settings-receipts", on);
      await pageA.click('#settings-form button[type="submit"]');
      await pageA.locator("#settings-dialog:not([open])").waitFor({ state: "attached" });
    };
    await receipts(false);
    await pageB.waitForFunction(() => !document.querySelector("#messages li.seen"));
    await receipts(true);
  });

  await run.step("A (the owner) mutes B from the member list, then unmutes", async () => {
    const row = pageA.locator(`#members li[data-user="${bob.username}"]`);
    await row.locator("summary").click();
    await row.locator('button:has-text("Mute…")').click();
    await pageA.click("#moderate-submit");
    await pageB.locator("#message-input[disabled]").waitFor();
    const placeholder = await pageB.getAttribute("#message-input", "placeholder");
    if (!placeholder.includes("muted")) throw new Error(`placeholder ${JSON.stringify(placeholder)}`);
    await pageA.locator(`#messages li.line:has-text("${bob.username} was muted")`).waitFor();
    await pageA.locator(`#members li[data-user="${bob.username}"] .mod-menu button:text("Unmute")`).waitFor({ state: "attached" });
    await row.locator("summary").click();
    await row.locator('button:has-text("Unmute")').click();
    await waitComposerReady(pageB);
  });

  await run.step("B opens a DM from A's row in the member list; A gets it with an unread marker", async () => {
    await pageB.click(`#members li[data-user="${alice.username}"] button[aria-label$="a direct message"]`);
    await pageB.locator('#room-sub:text("Direct message")').waitFor();
    // Titled by the other user's display name (from GET /api/chat/dms), shown as text.
    await pageB.waitForFunction((name) => document.querySelector("#room-title").textContent === name, XSS_NAME);
    await waitComposerReady(pageB);
    await send(pageB, "둘이서만 얘기해요");
    await waitForMessage(pageB, "둘이서만 얘기해요");
    const dm = pageA.locator("#dm-list li.room-item");
    await pageA.locator("#dm-list li.room-item.unread .badge").waitFor();
    const badge = await pageA.textContent("#dm-list li.room-item .badge");
    if (badge !== "1") throw new Error(`unread badge ${JSON.stringify(badge)}`);
    await dm.locator("a").click();
    await waitForMessage(pageA, "둘이서만 얘기해요");
    if (await pageA.locator("#dm-list li.room-item .badge").count()) throw new Error("the badge stayed after reading");
    // Both are always the DM's members: no "joined" or "left" lines there.
    const lines = await pageB.$$eval("#messages li.line", (nodes) => nodes.map((n) => n.textContent));
    if (lines.length) throw new Error(`lines in the DM: ${JSON.stringify(lines)}`);
    await assertNoMarkup(pageA, "A");
    await assertNoMarkup(pageB, "B");
  });

  await run.step("search finds a word in the private room; the result opens the room at that message", async () => {
    await pageA.fill("#search-input", "바나나우유");
    await pageA.press("#search-input", "Enter");
    const result = pageA.locator(`#search-results a.result-link[data-room="${room}"]`);
    await result.first().waitFor();
    await pageA.screenshot({ path: shot("search.png") });
    await result.first().click();
    await pageA.locator("#search-panel").waitFor({ state: "hidden" });
    await pageA.locator(`#room-list li[data-room="${room}"] a[aria-current="page"]`).waitFor();
    await pageA.locator("#messages li.message.focused").waitFor();
  });

  const burst = 3 * config.historyPageSize + 2;
  await run.step(`a reload keeps the session and the room; ${burst} messages are paged back by scrolling up`, async () => {
    await pageB.click(`#room-list li[data-room="${room}"] a`);
    await waitComposerReady(pageB);
    for (let i = 1; i <= burst; i++) await send(pageB, `줄 ${i}`);
    await waitForMessage(pageB, `줄 ${burst}`);
    const sentBefore = socketsA.sent.length;
    await pageA.reload();
    await pageA.locator('#conn-state[data-state="connected"]').waitFor();
    if (!(await pageA.isHidden("#signin"))) throw new Error("signed out by a reload");
    await pageA.locator(`#room-list li[data-room="${room}"] a[aria-current="page"]`).waitFor();
    await waitForMessage(pageA, `줄 ${burst}`);
    // Read marks live on the server: the DM read before the reload is still read.
    if (await pageA.locator("#dm-list .badge").count()) throw new Error("the DM read before the reload is unread again");
    for (let i = 0; i < 10 && (await pageA.isVisible("#older-btn")); i++) {
      await pageA.evaluate(() => {
        document.getElementById("scroller").scrollTop = 0;
      });
      await pageA.waitForTimeout(250);
    }
    const pages = socketsA.sent.slice(sentBefore).filter((frame) => frame.includes('"history"') && frame.includes('"before"'));
    if (pages.length < 2) throw new Error(`${pages.length} history pages asked for`);
    const seqs = await pageA.$$eval("#messages li.message[data-seq]", (nodes) => nodes.map((n) => Number(n.dataset.seq)));
    if (seqs[0] !== 1 || !seqs.every((seq, i) => i === 0 || seq === seqs[i - 1] + 1)) {
      throw new Error(`seqs after paging back: ${JSON.stringify(seqs)}`);
    }
  });

  await run.step("the access token is renewed before it expires (refresh_session), the socket stays up", async () => {
    // Renewed at 80 % of its lifetime: within one lifetime from now, the socket gets a new token.
    const ttl = config.accessTokenTtlSeconds * 1000;
    const closedBefore = socketsA.closed;
    const sentBefore = socketsA.sent.length;
    const renewed = () => socketsA.sent.slice(sentBefore).some((frame) => frame.includes('"refresh_session"'));
    for (const until = Date.now() + ttl + 10_000; !renewed() && Date.now() < until; ) await pageA.waitForTimeout(250);
    if (!renewed()) throw new Error(`no refresh_session within ${ttl / 1000 + 10} s`);
    await pageA.waitForTimeout(2_000);
    await pageA.locator('#conn-state[data-state="connected"]').waitFor();
    if (socketsA.closed !== closedBefore) throw new Error("a WebSocket closed while the token was renewed");
    await send(pageA, "토큰이 바뀌어도 그대로");
    await waitForMessage(pageB, "토큰이 바뀌어도 그대로");
  });

  await run.step("the process serving A is killed: A reconnects to another one and catches up", async () => {
    const victim = await servedBy(pageA);
    const pid = Number(pods.get(victim));
    if (!pid) throw new Error(`A is served by ${victim}, not one of ${[...pods.keys()]}`);
    const bobMoves = (await servedBy(pageB)) === victim;
    process.kill(pid, "SIGKILL");
    await pageA.locator('#conn-state[data-state="reconnecting"]').waitFor();
    let missed = null;
    if (!bobMoves) {
      missed = "프로세스가 죽은 동안";
      await send(pageB, missed);
      await waitForMessage(pageB, missed);
    }
    await pageA.locator('#conn-state[data-state="connected"]').waitFor({ timeout: 30_000 });
    const now = await servedBy(pageA);
    if (!now || now === victim) throw new Error(`A is served by ${now} after ${victim} died`);
    if (missed) await waitForMessage(pageA, missed, 15_000);
    await pageB.locator('#conn-state[data-state="connected"]').waitFor({ timeout: 30_000 });
    await waitComposerReady(pageA);
    await send(pageA, "다시 연결됐어요");
    await waitForMessage(pageB, "다시 연결됐어요", 15_000);
    const ids = await confirmedIds(pageA);
    if (new Set(ids).size !== ids.length) throw new Error("a message shown twice");
    console.log(`     (A moved from ${victim} to ${now}; B ${bobMoves ? "moved too" : "stayed"})`);
  });

  await run.step("screenshots: desktop light and dark, 360 px light and dark; the list keeps >= 60 %", async () => {
    const desktopA = await pageA.screenshot({ path: shot("desktop-light.png") });
    const desktopB = await pageB.screenshot({ path: shot("desktop-dark.png") });
    await sideBySide(run.browser, [desktopA, desktopB], shot("desktop-both.png"), 2480, 800);
    const shares = [];
    const narrow = [];
    for (const [page, name] of [[pageA, "phone-light.png"], [pageB, "phone-dark.png"]]) {
      await page.setViewportSize({ width: 360, height: 640 });
      await page.waitForTimeout(300);
      narrow.push(await page.screenshot({ path: shot(name) }));
      shares.push(await messageListShare(page));
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      if (wide > 360) throw new Error(`${name}: the page is ${wide} px wide`);
    }
    await pageB.click("#menu-btn");
    await pageB.locator("#sidebar").waitFor();
    await pageB.waitForTimeout(300);
    narrow.push(await pageB.screenshot({ path: shot("phone-drawer-dark.png") }));
    await pageB.keyboard.press("Escape");
    await sideBySide(run.browser, narrow, shot("phones.png"), 1200, 700);
    if (shares.some((share) => share < 0.6)) throw new Error(`message list shares ${shares.map((s) => s.toFixed(2))}`);
  });

  if (adminName) {
    await run.step("a server administrator (password as the users') reads every room's moderation log", async () => {
      const pageR = await run.newPage("R");
      await pageR.goto(`${url}/`);
      await pageR.fill("#username", adminName);
      await pageR.fill("#password", PASSWORD);
      await pageR.click("#signin-btn");
      await pageR.locator('#conn-state[data-state="connected"]').waitFor({ timeout: SIGNIN_TIMEOUT_MS });
      await pageR.click("#account-btn");
      await pageR.locator('#account-facts:has-text("an administrator")').waitFor();
      await pageR.click("#all-log-btn");
      await pageR.locator(`#audit-list li[data-action="mute"]:has-text("in ${room}")`).waitFor();
      await pageR.context().close();
    });
  }

  await run.step("B deletes its account: the sign-in form, and the username is refused from then on", async () => {
    await pageB.setViewportSize({ width: 1200, height: 760 });
    await deleteOwnAccount(pageB, bob.username);
    await pageA.locator(`#online-list li[data-user="${bob.username}"]`).waitFor({ state: "detached", timeout: 20_000 });
    const login = await fetch(`${url}/api/chat/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: bob.username, password: PASSWORD }),
    });
    if (login.status !== 401) throw new Error(`the deleted account's login answered ${login.status}`);
    // What B's page still asked with its token while the account went (the online list after a presence
    // change) is refused 401, rightly, and never repeated: B is signed out.
    renewed.forget("B");
  });

  await run.step("no script errors in either page", () => {
    const unanswered = renewed.unanswered();
    if (run.pageErrors.length || unanswered.length) throw new Error([...run.pageErrors, ...unanswered].join("; "));
  });
}

await run.finish(main);
