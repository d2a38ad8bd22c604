/** URL rules: server paths made absolute, and the base URL WebLLM derives from a model URL. */

// WebLLM keeps a URL that already names a revision and appends resolve/main/ to any other.
const REVISION_SEGMENT = /.+\/resolve\/.+\//;

/** True for text the page can turn into an http(s) URL: an absolute URL or a path on this server. */
export function isModelLocation(text) {
  if (text.startsWith("/") && !text.startsWith("//")) return true;
  try {
    return ["http:", "https:"].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

/** WebLLM rejects relative URLs (web-llm#294), so paths on this server become absolute here. */
export function absoluteUrl(location) {
  return new URL(location, globalThis.location.origin).href;
}

/** The folder WebLLM fetches mlc-chat-config.json and the weights from, for a model URL. */
export function modelBaseUrl(modelUrl) {
  let base = absoluteUrl(modelUrl);
  if (!base.endsWith("/")) base += "/";
  if (!REVISION_SEGMENT.test(base)) base += "resolve/main/";
  return base;
}

