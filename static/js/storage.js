/** Browser storage for model files: is there room, and may the browser keep them. */

import { formatBytes } from "./format.js";

/** A plain-words problem when the browser says it cannot store this many bytes more, else null. */
export async function roomProblem(bytes) {
  if (!bytes || !navigator.storage?.estimate) return null;
  const { quota, usage } = await navigator.storage.estimate();
  const free = quota - usage;
  if (!Number.isFinite(free) || free >= bytes) return null;
  return `This model needs about ${formatBytes(bytes)} of browser storage, but this site may use only `
    + `${formatBytes(free)} more. Free space (delete other cached models or this site's data); private `
    + "windows get much less room.";
}

/** Ask the browser not to evict downloaded models when space runs low; it may say no. */
export async function askToKeepFiles() {
  if (navigator.storage?.persist && !(await navigator.storage.persisted())) await navigator.storage.persist();
}
