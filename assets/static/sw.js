// textback's service worker: shows the push notifications staff turned on, and opens the conversation
// when one is tapped. It caches nothing: conversations are personal data and always come from the server.
"use strict";

self.addEventListener("push", (event) => {
  let note = { title: "textback", body: "", url: "/", tag: "textback", urgent: false };
  try {
    note = { ...note, ...event.data.json() };
  } catch (_) {
    // An empty or unreadable push still tells staff to look.
  }
  event.waitUntil(self.registration.showNotification(note.title, {
    body: note.body,
    tag: note.tag,
    renotify: true,
    requireInteraction: Boolean(note.urgent),
    icon: "/icon-192.png",
    badge: "/icon-192.png",
    data: { url: note.url },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  // Only pages of this appliance are opened, whatever the payload says.
  const target = new URL(event.notification.data && event.notification.data.url || "/", self.location.origin);
  const url = target.origin === self.location.origin ? target.href : self.location.origin + "/";
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of open) {
      if (client.url === url && "focus" in client) return client.focus();
    }
    return self.clients.openWindow(url);
  })());
});
