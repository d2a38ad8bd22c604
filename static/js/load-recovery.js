/**
 * What the page offers when a load cannot go on: after a lost GPU device, Load again (with a smaller
 * context window too, as memory is the usual cause); after a dropped connection, Resume.
 */

const $ = (id) => document.getElementById(id);
// Below this a context window holds too little of a conversation to be worth offering.
const SMALLEST_WINDOW = 256;

/** The context window to offer after a loss: half of what was loaded, or null when that is too small. */
export function smallerWindow(contextWindow) {
  const half = Math.floor((contextWindow ?? 0) / 2);
  return half >= SMALLEST_WINDOW ? half : null;
}

/**
 * Fill the engine's error box for a lost device (lost = session state's {entry, contextWindow});
 * reload(entry, contextWindow or null for the same) runs when the person picks one of the offers.
 */
export function offerReload(lost, detail, reload) {
  const smaller = smallerWindow(lost.contextWindow);
  $("engine-error-message").textContent = `The GPU stopped running ${lost.entry.name}, so it was unloaded. `
    + "This happens when the GPU runs out of memory, its driver restarts, or the tab sat in the background too "
    + "long. Your conversation is kept: load the model again to go on"
    + (smaller ? "; a smaller context window needs less GPU memory." : ".");
  $("engine-error-detail").textContent = detail;
  $("engine-error-more").hidden = !detail;
  $("reload-model").textContent = "Load it again";
  $("reload-model").onclick = () => reload(lost.entry, null);
  $("reload-smaller").hidden = !smaller;
  $("reload-smaller").textContent = `Load with a ${smaller} token context window`;
  $("reload-smaller").onclick = () => reload(lost.entry, smaller);
  $("engine-error-actions").hidden = false;
  $("engine-error").hidden = false;
}

/** Fill the engine's error box for a download the network broke off; resume() loads the entry again. */
export function offerResume(entry, detail, resume) {
  $("engine-error-message").textContent = `The connection dropped while ${entry.name} was downloading. The files `
    + "already downloaded are kept: Resume when you are back online, and only the rest is fetched.";
  $("engine-error-detail").textContent = detail;
  $("engine-error-more").hidden = !detail;
  $("reload-model").textContent = "Resume";
  $("reload-model").onclick = () => resume(entry);
  $("reload-smaller").hidden = true;
  $("engine-error-actions").hidden = false;
  $("engine-error").hidden = false;
}
