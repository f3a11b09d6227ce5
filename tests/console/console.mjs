// The key console in a real browser: headless Chromium (the system's, driven over the DevTools
// protocol by playwright-core) against the real worker under `wrangler dev`. Run by
// tests/console.rs, which starts the gateway and passes:
//   KEYGATE_URL, KEYGATE_ADMIN_PREFIX, KEYGATE_ADMIN_TOKEN, CHROMIUM, SCREENSHOT_DIR
// Each step prints one line `ok <step>`; the first failure prints `FAILED <step>: <reason>` and
// exits 1. Every wait is bounded (WAIT_MS); nothing sleeps to synchronise.
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const BASE = process.env.KEYGATE_URL;
const PREFIX = process.env.KEYGATE_ADMIN_PREFIX || "/_keygate/v1";
const TOKEN = process.env.KEYGATE_ADMIN_TOKEN;
const SHOTS = process.env.SCREENSHOT_DIR;
const WAIT_MS = 20000;
const LIST = "/v1/public/cms/articles/items";
const XSS_NAME = `<img src=x onerror="window.__xss=1">`;

let step = "start";
const browserErrors = [];
const badRequests = []; // 400s Chromium logged: only the one invalid network is expected


function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function gatewayStatus(key) {
  const response = await fetch(BASE + LIST, { headers: { authorization: "Bearer " + key } });
  const body = await response.json().catch(() => ({}));
  return { status: response.status, code: body.error ? body.error.code : null };
}

// The same request from client address `address` (CF-Connecting-IP: `wrangler dev` keeps a
// client-sent one, as tests/network.rs relies on).
async function gatewayStatusFrom(key, address) {
  const response = await fetch(BASE + LIST, { headers: { authorization: "Bearer " + key, "cf-connecting-ip": address } });
  const body = await response.json().catch(() => ({}));
  return { status: response.status, code: body.error ? body.error.code : null };
}

async function adminApi(method, path, body) {
  const response = await fetch(BASE + PREFIX + path, {
    method,
    headers: { authorization: "Bearer " + TOKEN, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  check(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

async function run(page) {
  const visible = (selector) => page.locator(selector).waitFor({ state: "visible", timeout: WAIT_MS });
  const hidden = (selector) => page.locator(selector).waitFor({ state: "hidden", timeout: WAIT_MS });
  // Waits until the text of `selector` satisfies `test` (a RegExp), returns that text.
  const textMatching = async (selector, pattern) => {
    await page.waitForFunction(
      ([s, source]) => {
        const node = document.querySelector(s);
        return node !== null && new RegExp(source).test(node.textContent);
      },
      [selector, pattern.source],
      { timeout: WAIT_MS },
    );
    return page.locator(selector).textContent();
  };
  const storage = () =>
    page.evaluate(() => ({
      session: JSON.stringify(sessionStorage),
      local: JSON.stringify(localStorage),
      cookie: document.cookie,
      url: location.href,
      html: document.documentElement.outerHTML,
    }));
  const ok = (name) => console.log("ok " + name);

  step = "open the console";
  const response = await page.goto(BASE + PREFIX + "/console");
  check(response.status() === 200, `console page answered ${response.status()}`);
  await visible("#sign-in-view");
  ok(step);

  step = "a wrong token is refused";
  await page.fill("#token", "wrong-token-" + "x".repeat(24));
  await page.click("#sign-in-form button[type=submit]");
  await textMatching("#sign-in-error", /UNAUTHORIZED/);
  check(await page.locator("#keys-view").isHidden(), "the key list is shown after a wrong token");
  check((await storage()).session === "{}", "a refused token was kept in sessionStorage");
  ok(step);

  step = "sign in";
  await page.fill("#token", TOKEN);
  await page.click("#sign-in-form button[type=submit]");
  await visible("#keys-view");
  await textMatching("#format-note", /kg_/);
  let stored = await storage();
  check(stored.session.includes(TOKEN), "the token is not in sessionStorage");
  check(!stored.local.includes(TOKEN) && stored.local === "{}", "localStorage is used: " + stored.local);
  check(stored.cookie === "", "cookies are set: " + stored.cookie);
  check(!stored.url.includes(TOKEN), "the token is in the URL");
  check(!stored.html.includes(TOKEN), "the token is in the DOM");
  ok(step);

  step = "create a key (one-time view)";
  await page.fill("#project", "console");
  await page.click("#list-form button[type=submit]");
  await visible("#keys-empty");
  await page.click("#new-key");
  await visible("#create-view");
  const roles = await page.locator("#create-role option").allTextContents();
  check(roles.includes("read_only"), "the role list does not come from the catalogue: " + roles);
  await page.fill("#create-name", "marketing site");
  await page.selectOption("#create-role", "read_only");
  await page.selectOption("#create-tier", "tier:free");
  await page.check('input[name="create-expiry"][value="days"]');
  await page.fill("#create-days", "90");
  await page.fill("#create-origins", "");
  await page.fill("#create-meta", "team=web");
  await page.click("#create-form button[type=submit]");
  await visible("#secret-view");
  const key = (await textMatching("#secret-key", /^kg_live_[0-9A-Za-z]{38}$/)).trim();
  await textMatching("#secret-view .warning", /only once/);
  if (SHOTS) await page.screenshot({ path: SHOTS + "/new-key.png" });
  await page.click("#secret-copy");
  await textMatching("#secret-copied", /Copied|Copy failed/);
  const copied = await page.evaluate(() => navigator.clipboard.readText().catch(() => null));
  check(copied === null || copied === key, "the copy button copied something else");
  ok(step);

  step = "use the new key at the gateway";
  let answer = await gatewayStatus(key);
  check(answer.status === 200, `the new key got ${answer.status} ${answer.code}`);
  ok(step);

  step = "leaving the one-time view forgets the key";
  await page.click("#secret-done");
  await visible("#key-view");
  stored = await storage();
  check(!stored.html.includes(key), "the plaintext key is still in the DOM");
  check(!stored.session.includes(key) && !stored.local.includes(key), "the plaintext key was stored");
  check((await page.locator("#secret-key").textContent()) === "", "the one-time view still holds the key");
  await textMatching("#key-name", /^marketing site$/);
  await textMatching("#key-facts", /tier free/);
  await textMatching("#key-facts", /team=web/);
  ok(step);

  step = "edit name, role, expiry and limits";
  await page.click("#key-edit");
  await visible("#edit-form");
  await page.check('input[name="edit-expiry"][value="date"]');
  await page.fill("#edit-valid-to", "");
  await page.click("#edit-form button[type=submit]");
  await textMatching("#key-error", /^Expiry: pick the date/);
  await page.fill("#edit-name", "marketing site (www)");
  await page.check('input[name="edit-expiry"][value="lifetime"]');
  await page.selectOption("#edit-tier", "custom");
  await page.fill("#edit-limits", "minute 100 60");
  await page.click("#edit-form button[type=submit]");
  await textMatching("#key-name", /^marketing site \(www\)$/);
  const facts = await textMatching("#key-facts", /minute: 100\/60s/);
  check(/Valid tolifetime/.test(facts), "the expiry did not switch to lifetime: " + facts);
  ok(step);

  step = "disable: the gateway refuses the key";
  await page.click("#key-toggle");
  await textMatching("#key-badge", /^disabled$/);
  answer = await gatewayStatus(key);
  check(answer.status === 401 && answer.code === "KEY_DISABLED", `a disabled key got ${answer.status} ${answer.code}`);
  ok(step);

  step = "enable: the gateway admits the key again";
  await page.click("#key-toggle");
  await textMatching("#key-badge", /^active$/);
  answer = await gatewayStatus(key);
  check(answer.status === 200, `an enabled key got ${answer.status} ${answer.code}`);
  ok(step);

  step = "allowed networks: set through Edit, enforced by the gateway";
  await textMatching("#key-facts", /Allowed networksany/);
  await textMatching("#key-facts", /Allowed countriesany/);
  await page.click("#key-edit");
  await visible("#edit-form");
  check((await page.inputValue("#edit-networks")) === "", "the networks field is prefilled for a key without networks");
  await page.fill("#edit-networks", "10.0.0.0/8");
  await page.click("#edit-form button[type=submit]");
  await textMatching("#key-facts", /Allowed networks10\.0\.0\.0\/8Allowed countriesany/);
  answer = await gatewayStatusFrom(key, "10.1.2.3");
  check(answer.status === 200, `a request from 10.1.2.3 got ${answer.status} ${answer.code}`);
  answer = await gatewayStatusFrom(key, "192.0.2.1");
  check(answer.status === 403 && answer.code === "NETWORK_NOT_ALLOWED", `a request from 192.0.2.1 got ${answer.status} ${answer.code}`);
  ok(step);

  step = "an edit that leaves the networks alone keeps them";
  await page.click("#key-edit");
  await visible("#edit-form");
  check((await page.inputValue("#edit-networks")) === "10.0.0.0/8", "the networks field is not prefilled from the record");
  await page.fill("#edit-limits", "minute 120 60");
  await page.click("#edit-form button[type=submit]");
  await textMatching("#key-facts", /minute: 120\/60s/);
  await textMatching("#key-facts", /Allowed networks10\.0\.0\.0\/8Allowed countries/);
  answer = await gatewayStatusFrom(key, "192.0.2.1");
  check(answer.status === 403 && answer.code === "NETWORK_NOT_ALLOWED", `after an unrelated edit, 192.0.2.1 got ${answer.status} ${answer.code}`);
  ok(step);

  step = "an invalid network shows the API's validation error";
  await page.click("#key-edit");
  await visible("#edit-form");
  await page.fill("#edit-networks", "10.0.0.1/8");
  await page.click("#edit-form button[type=submit]");
  await textMatching("#key-error", /^400 VALIDATION_FAILED: [\s\S]*allowed_networks/);
  check(await page.locator("#edit-form").isVisible(), "the edit form closed on a refused edit");
  await textMatching("#key-facts", /Allowed networks10\.0\.0\.0\/8Allowed countries/);
  ok(step);

  step = "clearing the networks through Edit admits any address again";
  await page.fill("#edit-networks", "");
  await page.click("#edit-form button[type=submit]");
  await textMatching("#key-facts", /Allowed networksanyAllowed countriesany/);
  check((await page.locator("#key-error").textContent()) === "", "the validation error stayed after a good edit");
  answer = await gatewayStatusFrom(key, "192.0.2.1");
  check(answer.status === 200, `after clearing, 192.0.2.1 got ${answer.status} ${answer.code}`);
  ok(step);

  step = "audit log";
  const audit = await textMatching("#audit-body", /disabled[\s\S]*enabled|enabled[\s\S]*disabled/);
  for (const action of ["created", "updated", "disabled", "enabled"]) check(audit.includes(action), `audit has no ${action}: ${audit}`);
  ok(step);

  step = "usage per day";
  await page.click("#key-back");
  await visible("#keys-view");
  await page.click('#keys-body tr:has-text("marketing site (www)")');
  await visible("#key-view");
  const summary = await textMatching("#usage-summary", /^[1-9]\d* requests on 1 day/);
  check(await page.locator("#usage-chart rect.allowed").count() >= 1, "no bar in the usage chart: " + summary);
  ok(step);

  step = "roll with a grace period that follows use";
  const oldId = await page.evaluate(() => document.querySelector("#key-facts dd").textContent);
  await page.click("#key-roll");
  await page.fill("#roll-grace", "3600");
  await page.fill("#roll-after-use", "600");
  await page.click("#roll-form button[type=submit]");
  await visible("#secret-view");
  const rolled = (await textMatching("#secret-key", /^kg_live_[0-9A-Za-z]{38}$/)).trim();
  check(rolled !== key, "the roll showed the old key");
  await textMatching("#secret-note", /old key kg_live_…\S+ now ends \d{4}-\d\d-\d\d \d\d:\d\d UTC at the latest, earlier once the new key has been in use for 600 s/);
  answer = await gatewayStatus(rolled);
  check(answer.status === 200, `the rolled key got ${answer.status} ${answer.code}`);
  answer = await gatewayStatus(key);
  check(answer.status === 200, `the old key within its grace period got ${answer.status} ${answer.code}`);
  await page.click("#secret-done");
  await visible("#key-view");
  check(!(await storage()).html.includes(rolled), "the rolled key is still in the DOM");
  const newId = await page.evaluate(() => document.querySelector("#key-facts dd").textContent);
  check(newId !== oldId, "the key view does not show the new key");
  await textMatching("#key-facts", new RegExp("Rolled from" + oldId));
  ok(step);

  step = "revoke (the confirmation names the key)";
  await page.click("#key-revoke");
  await visible("#revoke-dialog");
  await textMatching("#revoke-dialog", /Revoke marketing site \(www\) \(kg_live_…/);
  await page.click("#revoke-confirm");
  await hidden("#revoke-dialog");
  await textMatching("#key-badge", /^revoked$/);
  answer = await gatewayStatus(rolled);
  check(answer.status === 401 && answer.code === "KEY_REVOKED", `a revoked key got ${answer.status} ${answer.code}`);
  check(await page.locator("#key-toggle").isDisabled(), "a revoked key can be toggled");
  ok(step);

  step = "a name with markup is shown as text";
  await page.click("#key-back");
  await visible("#keys-view");
  await page.click("#new-key");
  await page.fill("#create-name", XSS_NAME);
  await page.selectOption("#create-role", "read_only");
  await page.click("#create-form button[type=submit]");
  await visible("#secret-view");
  await page.click("#secret-done");
  await textMatching("#key-name", /^<img src=x onerror=/);
  await page.click("#key-back");
  await visible("#keys-view");
  await textMatching("#keys-body", /<img src=x onerror="window.__xss=1">/);
  const injected = await page.evaluate(() => ({ images: document.querySelectorAll("main img").length, xss: window.__xss }));
  check(injected.images === 0 && injected.xss === undefined, "markup in a key name was rendered: " + JSON.stringify(injected));
  ok(step);

  step = "key list and status filter";
  await page.click("#new-key");
  await page.fill("#create-name", "nightly export");
  await page.selectOption("#create-role", "read_only");
  await page.check("#create-disabled");
  await page.fill("#create-networks", "10.0.0.0/8\n2001:db8::/32");
  await page.fill("#create-countries", "de, at");
  await page.click("#create-form button[type=submit]");
  await visible("#secret-view");
  await page.click("#secret-done");
  await textMatching("#key-facts", /Allowed networks10\.0\.0\.0\/8, 2001:db8::\/32Allowed countriesDE, AT/);
  await page.click("#key-back");
  await visible("#keys-view");
  await textMatching("#keys-body", /nightly export/);
  if (SHOTS) await page.screenshot({ path: SHOTS + "/keys.png", fullPage: true });
  await page.selectOption("#status-filter", "revoked");
  await page.click("#list-form button[type=submit]");
  await page.waitForFunction(() => !document.querySelector("#keys-body").textContent.includes("nightly export"), null, { timeout: WAIT_MS });
  const statuses = await page.locator("#keys-body tr td:nth-child(5)").allTextContents();
  check(statuses.length >= 1 && statuses.every((s) => s === "revoked"), "the revoked filter shows: " + statuses);
  ok(step);

  step = "paging";
  for (let i = 0; i < 21; i += 1) await adminApi("POST", "/keys", { project: "console-paging", name: `key ${i}`, role: "read_only" });
  await page.selectOption("#status-filter", "");
  await page.fill("#project", "console-paging");
  await page.click("#list-form button[type=submit]");
  await textMatching("#page-note", /^page 1$/);
  await page.waitForFunction(() => document.querySelectorAll("#keys-body tr").length === 20, null, { timeout: WAIT_MS });
  await page.click("#page-next");
  await textMatching("#page-note", /^page 2$/);
  await page.waitForFunction(() => document.querySelectorAll("#keys-body tr").length === 1, null, { timeout: WAIT_MS });
  check(await page.locator("#page-next").isDisabled(), "a next page after the last");
  ok(step);

  step = "sign out forgets the token";
  await page.click("#sign-out");
  await visible("#sign-in-view");
  stored = await storage();
  check(!stored.session.includes(TOKEN) && stored.session === "{}", "sessionStorage after sign-out: " + stored.session);
  check(!stored.html.includes("console-paging") || !stored.html.includes("key 20"), "the key list is still in the page");
  await page.reload();
  await visible("#sign-in-view");
  check(await page.locator("#keys-view").isHidden(), "signed in again after a reload");
  ok(step);

  step = "no script error and no CSP violation";
  check(browserErrors.length === 0, "the browser reported: " + browserErrors.join(" | "));
  check(badRequests.length === 1, `expected the one refused invalid network, the browser logged ${badRequests.length} 400s`);
  ok(step);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox"],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  page.on("pageerror", (error) => browserErrors.push("page error: " + error.message));
  page.on("console", (message) => {
    // A refused admin call (the wrong token) is logged by Chromium as a failed resource load.
    // The invalid network (a 400) is another; it is counted and checked on its own.
    if (message.type() !== "error" || /status of 401/.test(message.text())) return;
    if (/status of 400/.test(message.text())) badRequests.push(message.text());
    else browserErrors.push("console: " + message.text());
  });
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  await run(page);
} catch (error) {
  failed = true;
  console.log(`FAILED ${step}: ${error.message.split("\n").slice(0, 6).join(" / ")}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
