/*
 * Hearth's service worker: keeps the app shell (the URLs /app-shell.json lists) in a cache named by
 * the shell's version, so pages open with the network off. Online, the network answers first and the
 * shell is refreshed when its version changes. It never opens WebLLM's caches (webllm/*); model file
 * downloads, from any host, go through resilient-fetch.js (retry and resume), everything else under
 * /models/, /libs/ and on other origins passes untouched.
 */

import { isModelFile, resilientFetch } from "/static/js/resilient-fetch.js";

const SHELL_PREFIX = "hearth-shell-";
const MANIFEST = "/app-shell.json";
// Same-origin paths that always go straight to the network.
const PASS_THROUGH = ["/models/", "/libs/", "/sw.js", MANIFEST];
// The cache of the newest complete shell this worker has seen; kept across events while it lives.
let currentShell = null;

self.addEventListener("install", (event) => {
  event.waitUntil(refreshShell().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(Promise.all([dropOldShells(), self.clients.claim()]));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  // Model files from any host: retried and resumed here, never cached here (WebLLM caches them).
  if (isModelFile(request)) {
    event.respondWith(resilientFetch(request));
    return;
  }
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (PASS_THROUGH.some((prefix) => url.pathname.startsWith(prefix))) return;
  event.respondWith(networkFirst(event));
});

async function networkFirst(event) {
  try {
    const response = await fetch(event.request);
    // A page visit is the moment to notice a new shell version (sw.js itself rarely changes).
    if (event.request.mode === "navigate") event.waitUntil(refreshShell().catch(() => {}));
    return response;
  } catch (error) {
    const cached = await matchShell(event.request);
    if (cached) return cached;
    throw error;
  }
}

/** Fill the cache for the current shell version if it is not complete yet, then drop older ones. */
async function refreshShell() {
  const response = await fetch(MANIFEST, { cache: "no-store" });
  if (!response.ok) throw new Error(`${MANIFEST} answered ${response.status}`);
  const manifest = await response.clone().json();
  const name = SHELL_PREFIX + manifest.version;
  const cache = await caches.open(name);
  if (!(await cache.match(MANIFEST))) {
    // Whole responses are kept, headers included: pages stay cross-origin isolated (COEP) offline.
    await cache.addAll(manifest.urls.map((url) => new Request(url, { cache: "no-cache" })));
    await cache.put(MANIFEST, response); // written last: marks the cache complete
  }
  currentShell = name;
  await dropOldShells();
}

async function dropOldShells() {
  if (!currentShell) return;
  const names = await caches.keys();
  await Promise.all(names.filter((name) => name.startsWith(SHELL_PREFIX) && name !== currentShell)
    .map((name) => caches.delete(name)));
}

async function matchShell(request) {
  const options = { ignoreSearch: request.mode === "navigate" };
  for (const name of await caches.keys()) {
    if (!name.startsWith(SHELL_PREFIX)) continue;
    const cache = await caches.open(name);
    if (!(await cache.match(MANIFEST))) continue;
    const hit = await cache.match(request, options);
    if (hit) return hit;
  }
  return undefined;
}
