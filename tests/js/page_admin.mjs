// The page's account, server and moderation panels in a real browser, against one chatio process with
// the embedded defaults (`make run`: guests and accounts, the in-memory store):
//
//   node page_admin.mjs http://127.0.0.1:8080 /tmp/out
//
// A guest owns a room and sets its read receipts and retention (shown to a member too; a refused value
// in plain words); bans a member with a reason and a duration from the member menu, sees the ban in the
// room's list and in its moderation log, and lifts it from the list; mutes (the menu then offers Unmute
// only); makes the member an admin (who gets the controls at once) and a member again; finds people by
// name and opens a direct message; reads "About this server". An account deletes itself and is refused
// at the next login. Dialogs with the keyboard alone. Screenshots at 1280x800 and 360x640. Exits 0 when
// all checks pass, 1 on a failure, 2 on bad usage.

import { mkdirSync } from "node:fs";
import path from "node:path";
import {
  Run,
  SIGNIN_TIMEOUT_MS,
  assertNoMarkup,
  deleteOwnAccount,
  sideBySide,
  signInAsGuest,
  waitComposerReady,
} from "./pagekit.mjs";

const [url, outDir] = process.argv.slice(2);
if (!url || !/^https?:\/\//.test(url) || !outDir) {
  console.error("usage: node page_admin.mjs <server url> <output folder>");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const run = new Run(170_000);
const runId = Math.random().toString(36).slice(2, 7);
const room = `mods-${runId}`;
const owner = `owner-${runId}`;
const member = `민수-${runId}`;
const leaver = { username: `leaver-${runId}`, password: "correct horse battery", email: `leaver-${runId}@example.com` };
const REASON = "spam <b>again</b>";
const shot = (name) => path.join(outDir, name);
// The deleted account's login is refused (401): expected where the test tries it.
const refusedLogin = (response) => response.url().endsWith("/api/chat/auth/login") && response.status() === 401;

async function openGuest(name, options = {}) {
  const page = await run.newPage(name, { width: 1280, height: 800, ...options });
  await signInAsGuest(page, url, room, name);
  return page;
}

/** Open the ⋯ menu of `user`'s row and choose `label`. */
async function moderationChoice(page, user, label) {
  const row = page.locator(`#members li[data-user="${user}"]`);
  await row.locator("summary").click();
  await row.locator(".mod-menu button", { hasText: label }).click();
}

const menuLabels = async (page, user) => {
  const row = page.locator(`#members li[data-user="${user}"]`);
  await row.locator("summary").click();
  const labels = await row.locator(".mod-menu button").allTextContents();
  await row.locator("summary").click();
  return labels;
};

/** The element focused now: its id, or the id of the dialog it is in. */
const focusedIn = (page) =>
  page.evaluate(() => {
    const node = document.activeElement;
    return { id: node?.id ?? "", dialog: node?.closest("dialog")?.id ?? "" };
  });

async function main() {
  console.log(`chatio page test (panels) against ${url}, screenshots in ${outDir}`);
  await run.launch();
  let pageA;
  let pageB;
  const opened = await run.step("a guest opens a new room (its owner) and another guest joins it", async () => {
    pageA = await openGuest(owner);
    pageB = await openGuest(member, { colorScheme: "dark" });
    await pageA.locator(`#members li[data-user="${member}"]`).waitFor({ state: "attached" });
    if (!(await pageA.isVisible("#settings-btn"))) throw new Error("no settings button for the owner");
    if (await pageB.isVisible("#settings-btn")) throw new Error("a settings button for a plain member");
  });
  if (!opened) return;

  await run.step("room settings with the keyboard: focus moves in, Escape closes, focus returns", async () => {
    await pageA.focus("#settings-btn");
    await pageA.keyboard.press("Enter");
    await pageA.locator("#settings-dialog[open]").waitFor();
    const inside = await focusedIn(pageA);
    if (inside.dialog !== "settings-dialog") throw new Error(`focus on ${JSON.stringify(inside)}`);
    await pageA.keyboard.press("Escape");
    await pageA.locator("#settings-dialog:not([open])").waitFor({ state: "attached" });
    const back = await focusedIn(pageA);
    if (back.id !== "settings-btn") throw new Error(`focus returned to ${JSON.stringify(back)}`);
  });

  await run.step("retention: 30 days saved, shown to the owner and the member; a refused value in plain words", async () => {
    await pageA.click("#settings-btn");
    if (await pageA.inputValue("#settings-retention") !== "default") throw new Error("a new room does not show the server's default");
    await pageA.selectOption("#settings-retention", "days");
    await pageA.fill("#settings-days", "99999");
    await pageA.click('#settings-form button[type="submit"]');
    const error = await pageA.locator("#settings-error:not([hidden])").textContent();
    if (!error.startsWith("That was not accepted") || !error.includes("retentionDays")) throw new Error(`error ${JSON.stringify(error)}`);
    await pageA.fill("#settings-days", "30");
    await pageA.uncheck("#settings-receipts");
    await pageA.click('#settings-form button[type="submit"]');
    await pageA.locator("#settings-dialog:not([open])").waitFor({ state: "attached" });
    await pageA.locator('#room-facts:has-text("Messages are kept 30 days")').waitFor();
    await pageB.locator('#room-facts:has-text("Messages are kept 30 days")').waitFor();
    await pageA.click("#settings-btn");
    const shown = [await pageA.inputValue("#settings-retention"), await pageA.inputValue("#settings-days"), await pageA.isChecked("#settings-receipts")];
    if (JSON.stringify(shown) !== JSON.stringify(["days", "30", false])) throw new Error(`dialog shows ${JSON.stringify(shown)}`);
    await pageA.screenshot({ path: shot("settings-desktop.png") });
    await pageA.keyboard.press("Escape");
  });

  await run.step("a ban with a reason and a duration from the member menu; the member is told", async () => {
    await moderationChoice(pageA, member, "Ban…");
    await pageA.locator("#moderate-dialog[open]").waitFor();
    await pageA.selectOption("#moderate-duration", { label: "1 day" });
    await pageA.fill("#moderate-reason", REASON);
    await pageA.screenshot({ path: shot("ban-desktop.png") });
    await pageA.click("#moderate-submit");
    await pageA.locator("#moderate-dialog:not([open])").waitFor({ state: "attached" });
    await pageB.locator("#errors .toast", { hasText: "banned you" }).waitFor();
    const ban = pageA.locator(`#bans li[data-user="${member}"]`);
    await ban.waitFor();
    const meta = await ban.locator(".ban-meta").textContent();
    if (!meta.includes(`by ${owner}`) || !meta.includes(REASON) || !meta.includes("until")) throw new Error(`ban shown as ${JSON.stringify(meta)}`);
    await assertNoMarkup(pageA, "A");
  });

  await run.step("the moderation log shows the ban, its reason and its end", async () => {
    await pageA.click("#audit-btn");
    const entry = pageA.locator('#audit-list li[data-action="ban"]');
    await entry.waitFor();
    const text = await entry.textContent();
    if (!text.includes(`${owner} banned ${member}`) || !text.includes(REASON)) throw new Error(`log entry ${JSON.stringify(text)}`);
    await pageA.screenshot({ path: shot("log-desktop.png") });
    await pageA.keyboard.press("Escape");
    if ((await focusedIn(pageA)).id !== "audit-btn") throw new Error("focus did not return to the log button");
  });

  await run.step("at 360 px: the details drawer with the ban list, and the log, fit the width", async () => {
    await pageA.setViewportSize({ width: 360, height: 640 });
    await pageA.click("#members-btn");
    await pageA.locator("#details #bans li").waitFor();
    await pageA.waitForTimeout(300);
    const drawer = await pageA.screenshot({ path: shot("bans-phone.png") });
    await pageA.click("#audit-btn");
    await pageA.locator('#audit-list li[data-action="ban"]').waitFor();
    const log = await pageA.screenshot({ path: shot("log-phone.png") });
    const wide = await pageA.evaluate(() => document.documentElement.scrollWidth);
    if (wide > 360) throw new Error(`the page is ${wide} px wide`);
    await pageA.keyboard.press("Escape");
    await pageA.click("#settings-btn");
    const settings = await pageA.screenshot({ path: shot("settings-phone.png") });
    await pageA.keyboard.press("Escape");
    await pageA.keyboard.press("Escape");
    await pageA.setViewportSize({ width: 1280, height: 800 });
    await sideBySide(run.browser, [drawer, log, settings], shot("phones-moderation.png"), 1180, 700);
  });

  await run.step("unban from the list; the member joins the room again", async () => {
    await pageA.click(`#bans li[data-user="${member}"] button:has-text("Unban")`);
    await pageA.locator(`#bans li[data-user="${member}"]`).waitFor({ state: "detached" });
    await pageA.locator("#bans-empty:not([hidden])").waitFor();
    await pageB.evaluate((id) => {
      location.hash = `room=${encodeURIComponent(id)}`;
    }, room);
    await pageA.locator(`#members li[data-user="${member}"]`).waitFor({ state: "attached" });
    await waitComposerReady(pageB);
  });

  await run.step("mute: the menu offers Unmute to a muted member only", async () => {
    let labels = await menuLabels(pageA, member);
    if (labels.includes("Unmute") || !labels.includes("Mute…")) throw new Error(`menu ${JSON.stringify(labels)}`);
    await moderationChoice(pageA, member, "Mute…");
    await pageA.selectOption("#moderate-duration", { label: "1 hour" });
    await pageA.click("#moderate-submit");
    await pageB.locator("#message-input[disabled]").waitFor();
    await pageA.waitForFunction(() => document.querySelector("#members .mod-menu")?.textContent.includes("Unmute"));
    labels = await menuLabels(pageA, member);
    if (!labels.includes("Unmute") || labels.includes("Mute…")) throw new Error(`menu when muted ${JSON.stringify(labels)}`);
    await moderationChoice(pageA, member, "Unmute");
    await waitComposerReady(pageB);
  });

  await run.step("the owner makes the member an admin: settings and bans at once; a plain member again", async () => {
    await moderationChoice(pageA, member, "Make admin");
    await pageB.locator("#settings-btn:not([hidden])").waitFor();
    await pageB.locator("#mod-section:not([hidden]) #bans-empty:not([hidden])").waitFor();
    await moderationChoice(pageA, member, "Make a plain member");
    await pageB.locator("#settings-btn[hidden]").waitFor({ state: "attached" });
  });

  await run.step("find people by the start of a name; a result opens a direct message", async () => {
    await pageB.click("#people-btn");
    await pageB.fill("#people-q", owner.slice(0, 8));
    await pageB.press("#people-q", "Enter");
    const row = pageB.locator(`#people-list li[data-user="${owner}"]`);
    await row.waitFor();
    await pageB.screenshot({ path: shot("people-dark.png") });
    await row.locator("button").click();
    await pageB.locator('#room-sub:text("Direct message")').waitFor();
  });

  await run.step("the account dialog says who I am; About this server shows its figures in words", async () => {
    await pageA.click("#account-btn");
    const facts = await pageA.textContent("#account-facts");
    if (!facts.includes(`@${owner}`) || !facts.includes("as a guest")) throw new Error(`facts ${JSON.stringify(facts)}`);
    if (await pageA.isVisible("#delete-account-btn")) throw new Error("a guest is offered account deletion");
    await pageA.screenshot({ path: shot("account-desktop.png") });
    await pageA.click("#about-btn");
    await pageA.locator('#about-summary:has-text("You are served by")').waitFor();
    const about = await pageA.textContent("#about-facts");
    for (const words of ["Connections here", "Online now", "Stored", "messages"]) {
      if (!about.includes(words)) throw new Error(`about shows ${JSON.stringify(about)}`);
    }
    await pageA.screenshot({ path: shot("about-desktop.png") });
    await pageA.setViewportSize({ width: 360, height: 640 });
    await pageA.screenshot({ path: shot("about-phone.png") });
    await pageA.keyboard.press("Escape");
    await pageA.setViewportSize({ width: 1280, height: 800 });
  });

  await run.step("an account (with an e-mail) deletes itself: back to the sign-in form, its login refused", async () => {
    const pageC = await run.newPage("C", { width: 360, height: 640, allowHttpErrors: [refusedLogin] });
    await pageC.goto(`${url}/`);
    // At 360 px each sign-in tab keeps its label on one line ("Create account" wrapped once).
    const lines = await pageC.$$eval('.tabs [role="tab"]', (tabs) =>
      tabs.map((tab) => {
        const style = getComputedStyle(tab);
        return (tab.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom)) / parseFloat(style.lineHeight);
      }),
    );
    if (lines.some((n) => !(n < 1.5))) throw new Error(`tab labels on ${JSON.stringify(lines)} lines`);
    await pageC.click("#tab-register");
    await pageC.fill("#username", leaver.username);
    await pageC.fill("#email", leaver.email);
    await pageC.fill("#password", leaver.password);
    await pageC.click("#signin-btn");
    await pageC.locator('#conn-state[data-state="connected"]').waitFor({ timeout: SIGNIN_TIMEOUT_MS });
    await pageC.click("#menu-btn");
    await pageC.click("#account-btn");
    const facts = await pageC.textContent("#account-facts");
    if (!facts.includes(leaver.email) || !facts.includes("with a password")) throw new Error(`facts ${JSON.stringify(facts)}`);
    await pageC.keyboard.press("Escape");
    await deleteOwnAccount(pageC, leaver.username, shot("delete-phone.png"));
    await pageC.click("#tab-login");
    await pageC.fill("#username", leaver.username);
    await pageC.fill("#password", leaver.password);
    await pageC.click("#signin-btn");
    await pageC.locator("#signin-error:not([hidden])").waitFor();
  });

  await run.step("no script errors in any page", () => {
    if (run.pageErrors.length) throw new Error(run.pageErrors.join("; "));
  });
}

await run.finish(main);
