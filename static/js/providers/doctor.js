/**
 * The connection doctor behind "Verify": one step at a time, stopping at the first that fails, each
 * said in plain words with the fix for the common servers. Steps: the URL itself; reachable (an
 * opaque no-cors call: does anything answer?); CORS (a real call the browser may read); authorised;
 * the model exists; a one-token chat whose stream parses; the model list (optional).
 */

import { baseUrlProblem } from "./records.js";
import { chatCall, modelsCall, modelsUrl } from "./requests.js";
import { formatOf } from "./formats/index.js";
import { bodyText, CallError, net } from "./net.js";
import { allowDirectCalls } from "./origins.js";
import { answerError, parseJson, streamCall } from "./stream.js";

const PROBE_MS = 8000;

/** How to let this page call a server directly, for the servers people run. */
export function corsFixes(pageOrigin) {
  return [
    `Ollama: start it with OLLAMA_ORIGINS=${pageOrigin}`,
    `vLLM: --allowed-origins '["${pageOrigin}"]'`,
    "LiteLLM proxy: it allows any origin unless LITELLM_CORS_ORIGINS / allowed_origins limit it — add this page's origin",
    `nginx in front: add_header Access-Control-Allow-Origin ${pageOrigin} always; add_header `
      + "Access-Control-Allow-Headers \"Authorization, Content-Type\" always; and answer OPTIONS with 204",
    "or switch this provider to “through Hearth”: this server relays the calls and CORS does not matter",
  ];
}

/** Run the steps for a provider and one of its models; returns [{step, ok, text, fixes?}]. */
export async function verify(provider, model, key, { withModelList = true } = {}) {
  const steps = [];
  const say = (step, ok, text, fixes = []) => {
    steps.push({ step, ok, text, fixes });
    return ok !== false;
  };
  const urlProblem = baseUrlProblem(provider.baseUrl, formatOf(provider.type));
  if (!say("url", !urlProblem, urlProblem ?? `Calls go to ${provider.baseUrl}`)) return steps;
  if (mixedContent(provider)) {
    say("url", "warn", "This page is https but the provider is plain http on another machine: the browser blocks "
      + "such calls. Serve the provider over https, or switch it to “through Hearth”.");
  }
  const relayed = provider.via === "relay" || provider.source === "server";
  try {
    await allowDirectCalls(provider);
  } catch (error) {
    say("reachable", false, error.message);
    return steps;
  }
  if (!relayed) {
    const answer = await answersAtAll(provider);
    const text = {
      up: "The server answers.",
      down: `Nothing answers at ${provider.baseUrl}: is the server running, and is the address and port right?`,
      slow: `${provider.baseUrl} took more than ${PROBE_MS / 1000} s to answer: the server is busy or stuck.`,
    }[answer];
    if (!say("reachable", answer === "up", text)) return steps;
  }
  if (!model) {
    say("model", false, "Add a model (by hand, or fetch the list) to finish the check.");
    return steps;
  }
  const call = chatCall(provider, model, [{ role: "user", content: "Say OK." }], { max_tokens: 1 }, key);
  let events = 0;
  try {
    await streamCall(provider, call, { onEvent: () => { events += 1; }, firstByteMs: 30_000, idleMs: 30_000 });
  } catch (error) {
    explainChatFailure(error, provider, relayed, say);
    return steps;
  }
  if (relayed) say("reachable", true, "Hearth's relay reaches the server.");
  say("cors", true, relayed ? "Not needed: calls go through Hearth." : "The browser may call it (CORS allowed).");
  say("auth", true, key || provider.hasKey ? "The key is accepted." : "No key needed.");
  say("model", true, `The model ${model.id} exists.`);
  say("chat", events > 0, events > 0 ? "A one-token chat streamed back and parsed." : "The chat answered but its stream held nothing.");
  if (withModelList && modelsUrl(provider)) {
    const listed = await listModels(provider, key).catch((error) => error);
    if (Array.isArray(listed)) say("models", true, `The model list has ${listed.length} model${listed.length === 1 ? "" : "s"}.`);
    else say("models", "warn", `The model list could not be fetched: ${listed.message} (models can be added by hand).`);
  }
  return steps;
}

function explainChatFailure(error, provider, relayed, say) {
  const kind = error.kind;
  if (kind === "unreachable" && !relayed) {
    say("cors", false, `The server answers, but does not let this page read its answers: CORS headers are missing `
      + `for ${location.origin}.`, corsFixes(location.origin));
  } else if (kind === "unreachable" || kind === "refused") {
    say("reachable", false, error.message);
  } else if (kind === "auth") {
    say("cors", true, relayed ? "Not needed: calls go through Hearth." : "The browser may call it (CORS allowed).");
    say("auth", false, error.message);
  } else if (kind === "missing") {
    say("cors", true, relayed ? "Not needed: calls go through Hearth." : "The browser may call it (CORS allowed).");
    say("auth", true, "The key is accepted.");
    say("model", false, error.message);
  } else {
    say("chat", false, error.message);
  }
}

/** The provider's model list: [{id, label?}]; throws with a plain message. */
export async function listModels(provider, key, { timeoutMs = PROBE_MS } = {}) {
  const call = modelsCall(provider, key);
  if (!call) throw new Error(`${formatOf(provider.type).label} has no model list: add models by hand`);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await net.call({ ...call, signal: controller.signal, firstByteMs: timeoutMs, idleMs: timeoutMs });
    if (response.status < 200 || response.status > 299) throw await answerError(provider, response);
    const json = parseJson(await bodyText(response));
    if (!json) throw new Error("the list is not JSON");
    return formatOf(provider.type).models(json);
  } catch (error) {
    if (error instanceof CallError) {
      throw new Error(error.name === "AbortError" ? `no answer within ${timeoutMs / 1000} s` : "the server could not be reached");
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

// "up", "down" or "slow": an opaque call needs no CORS, so only a server that is not there fails it.
async function answersAtAll(provider) {
  try {
    const url = modelsUrl(provider) ?? provider.baseUrl;
    await net.call({ url, method: "GET", mode: "no-cors", firstByteMs: PROBE_MS, idleMs: PROBE_MS });
    return "up";
  } catch (error) {
    return error.name === "FirstByteTimeout" ? "slow" : "down";
  }
}

function mixedContent(provider) {
  const host = new URL(provider.baseUrl).hostname;
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(host) || host.endsWith(".localhost");
  return location.protocol === "https:" && provider.baseUrl.startsWith("http:") && !loopback;
}
