/** Browser storage for model files: is there room, and may the browser keep them. */

import { formatBytes } from "./format.js";

// estimate() is no measure in current Chrome (it reports usage plus a fixed 10 GiB), so room is
// measured by storing that many bytes in a scratch cache, in PROBE_STEPS pieces, and deleting them.
const PROBE_CACHE = "hearth-room-probe";
const PROBE_STEPS = 16;
const MAX_PROBE_PIECE = 32 * 1024 * 1024;

/** A plain-words problem when the browser will not store this many bytes more for this site, else null. */
export async function roomProblem(bytes) {
  if (!bytes) return null;
  const free = await roomFor(bytes);
  return free === null || free >= bytes ? null : roomMessage(bytes, free);
}

/**
 * After a QuotaExceededError midway (its partial files already deleted): how much room is missing,
 * in plain words. bytes is the model's download size, when known.
 */
export async function ranOutOfRoom(bytes) {
  const free = bytes ? await roomFor(bytes) : null;
  const start = "The browser ran out of room for this site while downloading the model; what it had downloaded "
    + "is deleted again.";
  if (free === null || free >= bytes) return `${start} Free space (delete other stored models or this site's data) and load it again.`;
  return `${start} ${roomMessage(bytes, free)}`;
}

/** How many of bytes the browser lets this site store now (bytes itself when all fit); null if it cannot tell. */
async function roomFor(bytes) {
  if (!globalThis.caches) return null;
  const piece = new Uint8Array(Math.min(MAX_PROBE_PIECE, Math.ceil(bytes / PROBE_STEPS)));
  const cache = await caches.open(PROBE_CACHE);
  let stored = 0;
  try {
    for (let index = 0; stored < bytes; index += 1) {
      const size = Math.min(piece.length, bytes - stored);
      await cache.put(`/room-probe/${index}`, new Response(piece.subarray(0, size)));
      stored += size;
    }
    return bytes;
  } catch (error) {
    if (error.name === "QuotaExceededError") return stored;
    return null;
  } finally {
    await caches.delete(PROBE_CACHE);
  }
}

function roomMessage(bytes, free) {
  return `This model needs about ${formatBytes(bytes)} of browser storage and this site may use only about `
    + `${formatBytes(free)} more: ${formatBytes(bytes - free)} is missing. Free space (delete other stored models `
    + "in Models → Stored in this browser, or this site's data); private windows get much less room.";
}

/** Ask the browser not to evict downloaded models when space runs low; it may say no. */
export async function askToKeepFiles() {
  if (navigator.storage?.persist && !(await navigator.storage.persisted())) await navigator.storage.persist();
}
