/**
 * The engine's error box, and what it offers when a load cannot go on: after a lost GPU device, Load
 * again (with a smaller context window too, as memory is the usual cause); after a download that
 * failed, Resume; for a model too big for this GPU at its context window, a window that fits.
 */

const $ = (id) => document.getElementById(id);
/** Below this a context window holds too little of a conversation to be worth offering. */
export const SMALLEST_WINDOW = 256;
const WEBLLM_SAID = "What WebLLM said";

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
  showOffers({
    message: `The GPU stopped running ${lost.entry.name}, so it was unloaded. This happens when the GPU runs out `
      + "of memory, its driver restarts, or the tab sat in the background too long. Your conversation is kept: "
      + `load the model again to go on${smaller ? "; a smaller context window needs less GPU memory." : "."}`,
    detail,
    again: { label: "Load it again", run: () => reload(lost.entry, null) },
    smaller: smaller && { window: smaller, run: () => reload(lost.entry, smaller) },
  });
}

/**
 * Fill the engine's error box for a download that failed (offline, or the host kept failing after
 * every retry); resume() loads the entry again, which fetches only what is not stored.
 */
export function offerResume(entry, detail, resume, { offline }) {
  const why = offline ? `The connection dropped while ${entry.name} was downloading.`
    : `A file of ${entry.name} could not be downloaded, even after retrying: the host kept failing or the `
      + "connection kept dropping.";
  showOffers({
    message: `${why} The files already downloaded are kept: Resume `
      + `${offline ? "when you are back online" : "to try again"}, and only the rest is fetched.`,
    detail,
    again: { label: "Resume", run: () => resume(entry) },
  });
}

/**
 * Fill the engine's error box for a model too big for this GPU's buffers at its context window
 * (problem from gpu-memory.js); reload(entry, window) loads it with the window that fits.
 */
export function offerWindowThatFits(entry, problem, reload) {
  showOffers({
    message: problem.message,
    detail: problem.detail,
    summary: "What Hearth compared",
    smaller: problem.window && { window: problem.window, run: () => reload(entry, problem.window) },
  });
}

/** Fill the engine's error box with an error that offers nothing ({message, detail: WebLLM's words}). */
export function showEngineError({ message, detail }) {
  showOffers({ message, detail });
}

function showOffers({ message, detail, summary = WEBLLM_SAID, again = null, smaller = null }) {
  $("engine-error-message").textContent = message;
  $("engine-error-summary").textContent = summary;
  $("engine-error-detail").textContent = detail;
  $("engine-error-more").hidden = !detail;
  $("reload-model").hidden = !again;
  if (again) {
    $("reload-model").textContent = again.label;
    $("reload-model").onclick = again.run;
  }
  $("reload-smaller").hidden = !smaller;
  if (smaller) {
    $("reload-smaller").textContent = `Load with a ${smaller.window} token context window`;
    $("reload-smaller").onclick = smaller.run;
  }
  $("engine-error-actions").hidden = !again && !smaller;
  $("engine-error").hidden = false;
}
