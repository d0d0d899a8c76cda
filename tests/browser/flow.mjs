// The admin UI in a real headless Chromium (Debian's package), driven by playwright-core:
// log in, see a missed call arrive in the inbox live, reply, mark booked, see the dashboard count it.
// Saves screenshots of the inbox, the conversation and the dashboard at phone and desktop sizes.
// Usage: node flow.mjs BASE_URL USER PASSWORD SCREENSHOT_DIR SIGNING_KEY   (run by tests/browser.rs)
import { chromium } from "playwright-core";
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";

const [base, user, password, shots, signingKey] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });

// A webhook signed as Twilio signs it (with this installation's simulator key), posted to the server.
async function webhook(path, params) {
  const keys = Object.keys(params).sort();
  const data = base + path + keys.map((k) => k + params[k]).join("");
  const signature = createHmac("sha1", signingKey).update(data).digest("base64");
  const resp = await fetch(base + path, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature },
    body: new URLSearchParams(params),
  });
  if (!resp.ok) throw new Error(`${path} answered ${resp.status}`);
}

async function shoot(page, name) {
  for (const [label, size] of [["phone", { width: 360, height: 740 }], ["desktop", { width: 1280, height: 800 }]]) {
    await page.setViewportSize(size);
    await page.screenshot({ path: `${shots}/${name}-${label}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  // Log in with the keyboard alone (focus first: autofocus may land after the first keystrokes).
  await page.goto(base + "/login");
  await page.getByLabel("User name").focus();
  await page.keyboard.type(user);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  await page.keyboard.press("Enter");
  await page.waitForURL(base + "/", { timeout: 10000 });
  check(await page.getByText("No conversations here yet.").isVisible(), "the empty inbox says what to do");

  // A missed call arrives while the inbox is open: it appears without a reload.
  const call = { AccountSid: "AC" + "0".repeat(32), CallSid: "CA" + "1".repeat(32), From: "+14805550111", To: "+16025550100", Direction: "inbound" };
  await webhook("/hooks/twilio/voice", { ...call, CallStatus: "ringing" });
  await webhook("/hooks/twilio/dial", { ...call, CallStatus: "in-progress", DialCallSid: "CA" + "2".repeat(32), DialCallStatus: "no-answer" });
  await page.getByText("(480) 555-0111").first().waitFor({ timeout: 10000 });
  // The caller answers the text-back.
  await webhook("/hooks/twilio/sms", { AccountSid: call.AccountSid, MessageSid: "SM" + "3".repeat(32), From: "+14805550111", To: "+16025550100", Body: "Water heater is leaking, can someone come today?" });
  await page.getByText("Water heater is leaking").first().waitFor({ timeout: 10000 });
  check(await page.getByText("needs reply").first().isVisible(), "the conversation needs a reply");
  await shoot(page, "inbox");

  // Open it and reply; the counter shows characters and segments as you type.
  await page.getByText("(480) 555-0111").first().click();
  await page.locator(".msg.in", { hasText: "Water heater" }).waitFor();
  await page.locator("#body").fill("Yes! Sam can be there at 2pm. Does that work?");
  check((await page.locator("#segments").textContent()).includes("1 segment"), "the segment counter");
  await page.getByRole("button", { name: "Send" }).click();
  await page.getByText("Does that work?").first().waitFor();
  // Mark it booked, with its value.
  await page.locator("summary", { hasText: "Actions" }).click();
  await page.getByLabel("Job value ($)").fill("385");
  await page.getByRole("button", { name: "Mark booked" }).click();
  await page.getByText("booked $385.00").waitFor();
  await shoot(page, "conversation");

  // The dashboard counts it.
  await page.getByRole("link", { name: "Dashboard" }).click();
  await page.getByText("recovered revenue").waitFor();
  check(await page.getByText("$385.00").first().isVisible(), "the dashboard shows the recovered revenue");
  const booked = await page.locator("table.funnel tr", { hasText: "Booked" }).locator("td").textContent();
  check(booked.trim() === "1", `the funnel counts one booking, not ${booked}`);
  check(await page.locator("figure.chart svg").count() === 2, "two charts");
  await shoot(page, "dashboard");

  // Nothing overflows a 360 px phone screen.
  await page.setViewportSize({ width: 360, height: 740 });
  // Chart labels stay readable on the phone: their rendered size, not the SVG's units.
  await page.goto(base + "/dashboard");
  const smallest = await page.evaluate(() => {
    let min = Infinity;
    for (const svg of document.querySelectorAll("figure.chart svg")) {
      const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
      for (const t of svg.querySelectorAll("text")) {
        min = Math.min(min, parseFloat(getComputedStyle(t).fontSize) * scale);
      }
    }
    return min;
  });
  check(smallest >= 11, `chart labels render at ${smallest.toFixed(1)}px on a 360px screen`);
  for (const path of ["/", "/dashboard", "/contacts", "/settings"]) {
    await page.goto(base + path);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 360, `${path} is ${wide}px wide on a 360px screen`);
  }
  check(errors.length === 0, `no script errors: ${errors.join("; ")}`);
  console.log("browser flow passed");
} finally {
  await browser.close();
}
