/** Registers the service worker that keeps the app shell, so pages open with the network off. */

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/", type: "module" }).catch((error) => {
    // The page works without it, only not offline: worth a note for developers, not an alarm.
    console.info(`Hearth works online only: the service worker did not register (${error.message}).`);
  });
}
