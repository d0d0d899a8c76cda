// The admin UI in a real headless Chromium (Debian's package), driven by playwright-core, at a phone's
// 390x844 and a desk's 1280x800: log in; turn on push notifications for this browser; see a missed call
// arrive in the inbox live; get a push when the caller replies (the fake push service holds it; this script
// decrypts it with the subscription's private key, RFC 8291, and checks the VAPID JWT); read the
// conversation as chat bubbles in the business's time, with the number formatted and callable; insert a
// saved reply and send it; follow a link in a text; keep the composer on screen in a long conversation;
// mark it booked from the actions menu; see the dashboard count it. On every page at both sizes: no
// horizontal scroll, a tab bar that does not wrap, primary tap targets at least 44 px tall.
// Usage: node flow.mjs BASE_URL USER PASSWORD SCREENSHOT_DIR SIGNING_KEY PUSH_URL   (run by tests/browser.rs)
import { chromium } from "playwright-core";
import crypto from "node:crypto";
import { mkdirSync } from "node:fs";

const [base, user, password, shots, signingKey, pushUrl] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const PHONE = { width: 390, height: 844 };
const DESK = { width: 1280, height: 800 };
const CALLER = "+14805550111";

// A webhook signed as Twilio signs it (with this installation's simulator key), posted to the server.
async function webhook(path, params) {
  const keys = Object.keys(params).sort();
  const data = base + path + keys.map((k) => k + params[k]).join("");
  const signature = crypto.createHmac("sha1", signingKey).update(data).digest("base64");
  const resp = await fetch(base + path, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature },
    body: new URLSearchParams(params),
  });
  if (!resp.ok) throw new Error(`${path} answered ${resp.status}`);
}
let sms = 0;
const textIn = (body) => webhook("/hooks/twilio/sms", {
  AccountSid: "AC" + "0".repeat(32), MessageSid: "SM" + String(++sms).padStart(32, "0"), From: CALLER, To: "+16025550100", Body: body,
});

async function shoot(page, name) {
  for (const [label, size] of [["phone", PHONE], ["desktop", DESK]]) {
    await page.setViewportSize(size);
    // A phone shows what fits on its screen; a conversation opens at its newest message.
    await page.evaluate(() => window.scrollTo(0, document.querySelector(".thread") ? document.body.scrollHeight : 0));
    await page.screenshot({ path: `${shots}/${name}-${label}.png`, fullPage: label === "desktop" });
  }
  await page.setViewportSize(DESK);
}

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
}

async function waitUntil(what, f, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// HH:MM in Phoenix (the business's zone), now and a minute ago.
function phoenixNow() {
  const fmt = new Intl.DateTimeFormat("en-GB", { timeZone: "America/Phoenix", hour: "2-digit", minute: "2-digit", hour12: false });
  return [fmt.format(new Date()), fmt.format(new Date(Date.now() - 60000))];
}

// A browser's push keys, made here: the server gets the public half, this script keeps the private one.
const device = crypto.createECDH("prime256v1");
device.generateKeys();
const deviceAuth = crypto.randomBytes(16);

// RFC 8291: decrypt an aes128gcm push body with the device's key (what the phone does).
function decryptPush(body) {
  const salt = body.subarray(0, 16);
  const idlen = body[20];
  const senderKey = body.subarray(21, 21 + idlen);
  const sealed = body.subarray(21 + idlen);
  const shared = device.computeSecret(senderKey);
  const info = Buffer.concat([Buffer.from("WebPush: info\0"), device.getPublicKey(), senderKey]);
  const ikm = Buffer.from(crypto.hkdfSync("sha256", shared, deviceAuth, info, 32));
  const cek = Buffer.from(crypto.hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(crypto.hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const decipher = crypto.createDecipheriv("aes-128-gcm", cek, nonce);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  let plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
  let end = plain.length;
  while (end > 0 && plain[end - 1] === 0) end--;
  check(plain[end - 1] === 2, "the last-record delimiter");
  return JSON.parse(plain.subarray(0, end - 1).toString("utf8"));
}

// The VAPID JWT: ES256 by the key the page gave the browser, for the push service's origin.
function checkVapid(authorization, key) {
  const m = /^vapid t=([^,]+), k=(.+)$/.exec(authorization);
  check(m && m[2] === key, `a VAPID header with the appliance's key: ${authorization}`);
  const [h, c, sig] = m[1].split(".");
  const claims = JSON.parse(Buffer.from(c, "base64url").toString());
  check(claims.aud === new URL(pushUrl).origin, `the JWT's audience is the push service: ${claims.aud}`);
  check(claims.sub.startsWith("mailto:"), "the JWT names the operator");
  const jwk = { kty: "EC", crv: "P-256", x: Buffer.from(key, "base64url").subarray(1, 33).toString("base64url"), y: Buffer.from(key, "base64url").subarray(33).toString("base64url") };
  const ok = crypto.verify("sha256", Buffer.from(`${h}.${c}`), { key: crypto.createPublicKey({ key: jwk, format: "jwk" }), dsaEncoding: "ieee-p1363" }, Buffer.from(sig, "base64url"));
  check(ok, "the JWT verifies with the appliance's public key");
}

// Every page at a size: no horizontal scroll; the tab bar one row; primary tap targets at least 44 px.
async function checkLayout(page, path, size) {
  await page.setViewportSize(size);
  await page.goto(base + path);
  const m = await page.evaluate(() => {
    const visible = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden"; };
    const tabs = [...document.querySelectorAll(".tabs a")].map((a) => a.getBoundingClientRect());
    const targets = [...document.querySelectorAll("button:not(.small), .tabs a, .chip, .icon-button, .menu summary, .filters a, .bell, .inbox li a, .attention a")]
      .filter(visible)
      .map((e) => ({ what: (e.textContent || e.getAttribute("aria-label") || e.className).trim().slice(0, 30), h: e.getBoundingClientRect().height }));
    return {
      wide: document.documentElement.scrollWidth,
      tabRows: new Set(tabs.map((r) => Math.round(r.top))).size,
      tabBarHeight: document.querySelector(".tabs")?.getBoundingClientRect().height ?? 0,
      small: targets.filter((t) => t.h < 44),
    };
  });
  check(m.wide <= size.width, `${path} is ${m.wide}px wide on a ${size.width}px screen`);
  check(m.tabRows === 1, `${path}: the tabs sit on ${m.tabRows} rows at ${size.width}px`);
  check(m.tabBarHeight < 80, `${path}: the tab bar is ${m.tabBarHeight}px tall at ${size.width}px`);
  check(m.small.length === 0, `${path} at ${size.width}px: tap targets under 44px: ${JSON.stringify(m.small)}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const context = await browser.newContext({ viewport: DESK });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  // Installable: the manifest and its icons are served.
  const manifest = await (await fetch(base + "/manifest.webmanifest")).json();
  check(manifest.display === "standalone" && manifest.theme_color && manifest.start_url === "/", "the manifest");
  for (const icon of manifest.icons) {
    const r = await fetch(base + icon.src);
    check(r.ok && r.headers.get("content-type") === "image/png", `icon ${icon.src}`);
  }

  // Log in with the keyboard alone (focus first: autofocus may land after the first keystrokes).
  await page.goto(base + "/login");
  await page.getByLabel("User name").focus();
  await page.keyboard.type(user);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  await page.keyboard.press("Enter");
  await page.waitForURL(base + "/", { timeout: 10000 });
  check(await page.getByText("No conversations here yet.").isVisible(), "the empty inbox says what to do");
  check(await page.evaluate(() => document.querySelector('link[rel="manifest"]')?.getAttribute("href")) === "/manifest.webmanifest", "pages link the manifest");

  // Notifications: the owner allows them for themself, then this browser subscribes. (A headless browser
  // cannot reach a real push service, so the subscription is made here, with keys this script holds, for
  // the fake push service; the page's own worker is registered as on a phone.)
  await page.goto(base + "/settings#alerts");
  await page.getByRole("button", { name: `Turn on notifications for ${user}` }).click();
  await page.waitForURL(/\/settings/);
  await page.goto(base + "/notifications");
  const box = page.locator("[data-push-key]");
  await box.waitFor();
  const [key, csrf] = [await box.getAttribute("data-push-key"), await box.getAttribute("data-csrf")];
  check(await page.evaluate(async () => Boolean(await navigator.serviceWorker.register("/sw.js"))), "the service worker registers");
  const subscription = {
    endpoint: `${pushUrl}/push/browser`,
    keys: { p256dh: device.getPublicKey().toString("base64url"), auth: deviceAuth.toString("base64url") },
  };
  const stored = await page.evaluate(async ({ csrf, subscription }) => {
    const r = await fetch("/push/subscribe", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ csrf, subscription }) });
    return r.status;
  }, { csrf, subscription });
  check(stored === 201, `the subscription is stored (${stored})`);
  await page.goto(base + "/");
  await page.locator("html[data-live=on]").waitFor();

  // A missed call arrives while the inbox is open: it appears without a reload, the number formatted.
  const call = { AccountSid: "AC" + "0".repeat(32), CallSid: "CA" + "1".repeat(32), From: CALLER, To: "+16025550100", Direction: "inbound" };
  await webhook("/hooks/twilio/voice", { ...call, CallStatus: "ringing" });
  await webhook("/hooks/twilio/dial", { ...call, CallStatus: "in-progress", DialCallSid: "CA" + "2".repeat(32), DialCallStatus: "no-answer" });
  await page.getByText("(480) 555-0111").first().waitFor({ timeout: 10000 });
  // The caller answers the text-back: the inbox shows it, and the phone gets a push.
  await textIn("Water heater is leaking, can someone come today?");
  await page.getByText("Water heater is leaking").first().waitFor({ timeout: 10000 });
  check(await page.getByText("needs reply").first().isVisible(), "the conversation needs a reply");
  const pushed = await waitUntil("the push", async () => {
    const got = await (await fetch(`${pushUrl}/_received`)).json();
    return got.find((p) => p.path === "/push/browser");
  });
  checkVapid(pushed.headers.authorization, key);
  check(pushed.headers["content-encoding"] === "aes128gcm", "aes128gcm");
  const note = decryptPush(Buffer.from(pushed.body, "base64"));
  check(note.title.startsWith("(480) 555-0111 replied") && note.body.startsWith("Water heater"), `the push says who and what: ${JSON.stringify(note)}`);
  check(note.url.startsWith("/conversations/"), "the push opens the conversation");
  await shoot(page, "inbox");

  // The conversation: bubbles, the automatic text-back marked, times in Phoenix, the number callable.
  await page.getByText("(480) 555-0111").first().click();
  await page.locator(".msg.in", { hasText: "Water heater" }).waitFor();
  check(await page.locator(".msg.out.auto", { hasText: "Automatic text-back" }).count() === 1, "the automatic text-back is marked");
  check(await page.locator(".msg.call", { hasText: "Missed call" }).count() === 1, "the missed call is an event");
  const times = await page.locator(".msg .stamp time").allTextContents();
  check(times.length > 0 && times.every((t) => phoenixNow().includes(t)), `times are Phoenix's: ${times} vs ${phoenixNow()}`);
  check(await page.locator('a[href="tel:+14805550111"]').first().isVisible(), "tap to call");
  check(await page.locator('a[href="sms:+14805550111"]').first().isVisible(), "tap to text");

  // A saved reply, inserted with one tap and sent.
  await page.getByRole("button", { name: "On our way!" }).click();
  check(await page.locator("#body").inputValue() === "On our way!", "the saved reply is in the composer");
  check((await page.locator("#segments").textContent()).includes("1 segment"), "the segment counter");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await page.locator(".msg.out:not(.auto)", { hasText: "On our way!" }).waitFor();

  // A link in their text can be followed, and opens apart.
  await textIn("Here is a photo https://example.com/p/leak.jpg");
  const link = page.locator('.msg.in a[href="https://example.com/p/leak.jpg"]');
  await link.waitFor({ timeout: 10000 });
  check(await link.getAttribute("rel") === "noopener noreferrer", "rel=noopener noreferrer");

  // Mark it booked, with its value, from the actions menu.
  await page.locator("summary", { hasText: "Actions" }).click();
  await page.getByLabel("Job value ($)").fill("385");
  await page.getByRole("button", { name: "Mark booked" }).click();
  await page.getByText("booked $385.00").waitFor();
  await shoot(page, "conversation");
  const conversation = new URL(page.url()).pathname;

  // A long conversation: the composer stays on screen wherever the timeline is scrolled.
  for (let i = 1; i <= 24; i++) await textIn(`Message ${i} of a long story, with details that go on for a while.`);
  await page.setViewportSize(PHONE);
  await page.reload();
  await page.locator(".msg.in", { hasText: "Message 24 of" }).waitFor();
  for (const y of [0, 600]) {
    await page.evaluate((y) => window.scrollTo(0, y), y);
    const r = await page.locator("form.composer").boundingBox();
    check(r && r.y >= 0 && r.y + r.height <= PHONE.height, `the composer is on screen scrolled to ${y}: ${JSON.stringify(r)}`);
    const tabs = await page.locator(".tabs").boundingBox();
    check(r.y + r.height <= tabs.y + 1, "the composer sits above the tab bar");
  }
  // The composer grows with the text.
  const before = (await page.locator("#body").boundingBox()).height;
  await page.locator("#body").fill("A longer reply.\nIt has several lines.\nThree.\nFour.");
  await page.locator("#body").dispatchEvent("input");
  check((await page.locator("#body").boundingBox()).height > before, "the composer grows");
  await page.locator("#body").fill("");
  await page.setViewportSize(DESK);


  // The dashboard counts it.
  await page.getByRole("link", { name: "Dashboard" }).click();
  await page.getByText("recovered in").first().waitFor();
  check(await page.getByText("$385.00").first().isVisible(), "the dashboard shows the recovered revenue");
  const booked = await page.locator("table.funnel tr", { hasText: "Booked" }).locator("td").textContent();
  check(booked.trim() === "1", `the funnel counts one booking, not ${booked}`);
  await shoot(page, "dashboard");
  await page.goto(base + "/settings#b0-scripts");
  await page.locator("#b0-scripts .preview").first().waitFor();
  await shoot(page, "settings");

  // Chart labels stay readable on phones (360 px, the narrowest in common use, and 390 px): their rendered
  // size, not the SVG's units.
  for (const width of [360, PHONE.width]) {
    await page.setViewportSize({ width, height: PHONE.height });
    await page.goto(base + "/dashboard");
    const smallest = await page.evaluate(() => {
      let min = Infinity;
      for (const svg of document.querySelectorAll("figure.chart svg")) {
        const width = svg.getBoundingClientRect().width;
        if (width === 0) continue;
        const scale = width / svg.viewBox.baseVal.width;
        for (const t of svg.querySelectorAll("text")) {
          min = Math.min(min, parseFloat(getComputedStyle(t).fontSize) * scale);
        }
      }
      return min;
    });
    check(smallest >= 11 && smallest < Infinity, `chart labels render at ${smallest.toFixed(1)}px on a ${width}px screen`);
  }
  await page.setViewportSize(PHONE);

  for (const size of [PHONE, DESK]) {
    for (const path of ["/", conversation, "/contacts", "/dashboard", "/settings", "/notifications", "/golive", "/simulator"]) {
      await checkLayout(page, path, size);
    }
  }
  check(errors.length === 0, `no script errors: ${errors.join("; ")}`);
  console.log("browser flow passed");
} catch (e) {
  // What the page showed when it failed, for whoever reads the test's output.
  for (const p of browser.contexts().flatMap((c) => c.pages())) {
    await p.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
    console.log(`failed on ${p.url()}`);
  }
  throw e;
} finally {
  await browser.close();
}
