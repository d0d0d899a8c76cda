// textback admin: a reply box that counts characters and SMS segments as you type, and confirmations
// for destructive buttons. No framework; loaded with defer; the CSP forbids inline scripts.
"use strict";

const GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXT = "\f^{}\\[~]|€";

// Mirrors script::segments on the server: GSM-7 160/153, UCS-2 70/67, no split escapes or surrogate pairs.
function segments(text) {
  let gsm = true;
  const costs = [];
  for (const ch of text) {
    if (GSM.includes(ch)) costs.push(1);
    else if (GSM_EXT.includes(ch)) costs.push(2);
    else { gsm = false; break; }
  }
  const units = gsm ? costs : Array.from(text, (ch) => ch.length);
  const [single, part] = gsm ? [160, 153] : [70, 67];
  const total = units.reduce((a, b) => a + b, 0);
  if (total <= single) return { gsm, total, count: total > 0 ? 1 : 0 };
  let count = 1, used = 0;
  for (const u of units) { if (used + u > part) { count++; used = 0; } used += u; }
  return { gsm, total, count };
}

for (const box of document.querySelectorAll("textarea[data-segments]")) {
  const out = document.getElementById(box.dataset.segments);
  const update = () => {
    const s = segments(box.value);
    out.textContent = `${box.value.length} characters · ${s.count} segment${s.count === 1 ? "" : "s"} · ${s.gsm ? "GSM-7" : "UCS-2 (unicode)"}`;
  };
  box.addEventListener("input", update);
  update();
}

// The composer grows with its text (up to a limit the stylesheet sets), like a messaging app's.
for (const box of document.querySelectorAll("textarea[data-grow]")) {
  const grow = () => {
    box.style.height = "auto";
    box.style.height = `${box.scrollHeight + 2}px`;
  };
  box.addEventListener("input", grow);
  grow();
}

// Quick inserts: the booking link or a saved reply goes in at the cursor, and the counter updates.
for (const chip of document.querySelectorAll("button[data-insert]")) {
  chip.addEventListener("click", () => {
    const box = document.getElementById(chip.dataset.target);
    const [start, end] = [box.selectionStart ?? box.value.length, box.selectionEnd ?? box.value.length];
    const before = box.value.slice(0, start);
    const gap = before && !/\s$/.test(before) ? " " : "";
    box.value = before + gap + chip.dataset.insert + box.value.slice(end);
    const at = (before + gap + chip.dataset.insert).length;
    box.focus();
    box.setSelectionRange(at, at);
    box.dispatchEvent(new Event("input"));
  });
}

// A conversation opens at its newest message, as on a phone.
const thread = document.querySelector(".thread");
if (thread) window.scrollTo(0, document.body.scrollHeight);

for (const button of document.querySelectorAll("button[data-confirm]")) {
  button.addEventListener("click", (e) => {
    if (!window.confirm(button.dataset.confirm)) e.preventDefault();
  });
}

// Live updates: pages marked data-live refresh their content when the server says something changed.
const live = document.querySelector("[data-live]");
if (live && window.EventSource) {
  // One refresh at a time; news that arrives during one is fetched right after it, never dropped.
  let busy = false;
  let again = false;
  const refresh = async () => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        const resp = await fetch(window.location.href, { headers: { Accept: "text/html" } });
        if (resp.ok) {
          const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
          const fresh = doc.querySelector("[data-live]");
          const typing = document.activeElement && live.contains(document.activeElement);
          const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
          if (fresh && !typing) live.innerHTML = fresh.innerHTML;
          if (atBottom && thread) window.scrollTo(0, document.body.scrollHeight);
        }
      } while (again);
    } finally {
      busy = false;
    }
  };
  const source = new EventSource("/events");
  source.addEventListener("update", refresh);
  // After a reconnect, catch up on what happened while the connection was down.
  let connected = false;
  source.addEventListener("open", () => {
    if (connected) refresh();
    connected = true;
    document.documentElement.dataset.live = "on";
  });
}

// Script previews on the settings page: rendered by the server with sample data, with the segment count. An
// optional script left empty says what is used instead.
for (const box of document.querySelectorAll("textarea[data-preview]")) {
  const out = box.parentElement.querySelector(".preview");
  const form = box.form;
  let timer;
  const preview = async () => {
    if (box.dataset.optional && !box.value.trim()) {
      out.textContent = `Empty: ${box.dataset.optional}.`;
      return;
    }
    const body = new URLSearchParams({
      csrf: form.querySelector("input[name=csrf]").value,
      business: box.dataset.preview,
      script: box.value,
    });
    const resp = await fetch("/settings/preview", { method: "POST", body });
    const json = await resp.json();
    out.textContent = json.error ? `⚠ ${json.error}` : `Texted: “${json.text}” (${json.segments} segment${json.segments === 1 ? "" : "s"}, ${json.encoding})`;
  };
  box.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(preview, 300); });
  preview();
}

// The missed-call greeting is spoken, not texted: previewed as what callers hear, with a button that reads
// it aloud where the browser can.
for (const box of document.querySelectorAll("textarea[data-speech]")) {
  const out = box.parentElement.querySelector(".preview");
  const update = () => {
    out.textContent = box.value.trim() ? `Callers hear: “${box.value.trim()}”` : "Callers hear nothing: the call ends (or goes to voicemail).";
  };
  if (window.speechSynthesis) {
    const listen = document.createElement("button");
    listen.type = "button";
    listen.className = "secondary small";
    listen.textContent = "▶ Listen";
    listen.addEventListener("click", () => {
      window.speechSynthesis.cancel();
      window.speechSynthesis.speak(new SpeechSynthesisUtterance(box.value));
    });
    out.after(listen);
  }
  box.addEventListener("input", update);
  update();
}

// A link to a settings section opens it.
const openTarget = () => {
  const target = window.location.hash && document.getElementById(window.location.hash.slice(1));
  if (target && target.tagName === "DETAILS") target.open = true;
};
window.addEventListener("hashchange", openTarget);
openTarget();

// The simulator's phone also polls: the scheduler sends its texts without a page event.
const polled = document.querySelector("[data-poll]");
if (polled) {
  setInterval(async () => {
    const resp = await fetch(window.location.href, { headers: { Accept: "text/html" } });
    if (!resp.ok) return;
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    const fresh = doc.querySelector("[data-poll]");
    if (fresh) polled.innerHTML = fresh.innerHTML;
  }, 3000);
}

// Notifications on this device: register the service worker, ask the browser for a push subscription with
// the appliance's key, and hand it to the server (or take it back).
const pushBox = document.querySelector("[data-push-key]");
if (pushBox) {
  const status = pushBox.querySelector(".push-status");
  const say = (text) => { status.textContent = text; };
  const key = Uint8Array.from(atob(pushBox.dataset.pushKey.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const post = async (path, subscription) => {
    const resp = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ csrf: pushBox.dataset.csrf, subscription }),
    });
    const json = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(json.error || `the server answered ${resp.status}`);
  };
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    say("This browser cannot get notifications here. On an iPhone, add textback to the home screen and open it from there.");
    for (const b of pushBox.querySelectorAll("button")) b.disabled = true;
  } else {
    const ready = navigator.serviceWorker.register("/sw.js").then(() => navigator.serviceWorker.ready);
    pushBox.querySelector("[data-push=on]").addEventListener("click", async () => {
      try {
        if (await Notification.requestPermission() !== "granted") {
          say("Notifications are blocked for this site: allow them in the browser's site settings, then try again.");
          return;
        }
        const reg = await ready;
        const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
        await post("/push/subscribe", sub.toJSON());
        say("Notifications are on for this device.");
      } catch (e) {
        say(`Could not turn notifications on: ${e.message}`);
      }
    });
    pushBox.querySelector("[data-push=off]").addEventListener("click", async () => {
      try {
        const reg = await ready;
        const sub = await reg.pushManager.getSubscription();
        if (sub) {
          await post("/push/unsubscribe", sub.toJSON());
          await sub.unsubscribe();
        }
        say("Notifications are off for this device.");
      } catch (e) {
        say(`Could not turn notifications off: ${e.message}`);
      }
    });
  }
}
