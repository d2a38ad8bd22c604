/**
 * One streamed chat with a provider: the call (net.js), the SSE parser, the type's adapter, and the
 * same events out for every type — {type: "text" | "reasoning", text}, {type: "usage", input?,
 * output?}, {type: "finish", reason}, {type: "done"} — or a ProviderError in plain words.
 */

import { formatOf } from "./formats/index.js";
import { bodyText, net } from "./net.js";
import { SSEParser } from "./sse.js";

import { DEFAULT_TIMEOUT_S } from "./records.js";

/** A provider's failure in words a person can act on; status is the HTTP status when there was one. */
export class ProviderError extends Error {
  constructor(message, { status = null, serverText = null, kind = "failed" } = {}) {
    super(message);
    this.name = "ProviderError";
    this.status = status;
    this.serverText = serverText;
    this.kind = kind;
  }
}

/**
 * Stream a call (from requests.chatCall) and hand each event to onEvent. Resolves when the stream
 * ends; rejects with ProviderError (or an AbortError CallError when signal aborted it).
 */
export async function streamCall(provider, call, { signal, onEvent, firstByteMs = timeoutMs(provider), idleMs = firstByteMs }) {
  const format = formatOf(provider.type);
  const response = await open(provider, call, { signal, firstByteMs, idleMs });
  if (response.status < 200 || response.status > 299) throw await answerError(provider, response);
  const type = response.headers["content-type"] ?? "";
  if (!type.includes("text/event-stream")) {
    const text = await bodyText(response);
    throw new ProviderError(notAStream(provider, type, text), { status: response.status, serverText: text.slice(0, 500) });
  }
  const parser = new SSEParser();
  try {
    for await (const piece of response.pieces()) {
      for (const event of parser.push(piece)) {
        let events;
        try {
          events = format.events(event);
        } catch {
          throw new ProviderError(`${provider.name} sent a stream event that is not JSON: ${event.data.slice(0, 120)}`);
        }
        for (const out of events) {
          if (out.type === "error") throw new ProviderError(`${provider.name} stopped with an error: ${out.message}`, { kind: "stream" });
          onEvent(out);
        }
      }
    }
  } catch (error) {
    throw timeoutOr(provider, error);
  }
}

/** The head of a call, or a ProviderError saying why there was none. */
export async function open(provider, call, { signal = null, firstByteMs = timeoutMs(provider), idleMs = firstByteMs } = {}) {
  try {
    return await net.call({ ...call, signal, firstByteMs, idleMs });
  } catch (error) {
    throw timeoutOr(provider, error);
  }
}

/** The provider's own timeout, in milliseconds. */
export function timeoutMs(provider) {
  return (provider.timeoutSeconds ?? DEFAULT_TIMEOUT_S) * 1000;
}

function timeoutOr(provider, error) {
  const seconds = timeoutMs(provider) / 1000;
  if (error.name === "FirstByteTimeout") {
    return new ProviderError(`${provider.name} did not answer within ${seconds} s. Is the server busy or stuck? `
      + "Try again, or raise its timeout in Providers.", { kind: "timeout" });
  }
  if (error.name === "IdleTimeout") {
    return new ProviderError(`${provider.name} stopped sending for ${seconds} s in the middle of the reply.`,
      { kind: "timeout" });
  }
  if (error.name === "NetworkError") {
    const how = provider.via === "relay" || provider.source === "server" ? "through Hearth's relay" : "from this browser";
    return new ProviderError(`${provider.name} could not be reached ${how} (${provider.baseUrl}). Is it running? `
      + "Press Verify in Providers to find out which step fails.", { kind: "unreachable" });
  }
  return error;
}

/** The ProviderError for a non-2xx answer: the server's own message, in the type's error shape. */
export async function answerError(provider, response) {
  const text = await bodyText(response);
  const json = parseJson(text);
  const said = json ? formatOf(provider.type).errorText(json) : null;
  const relay = response.headers["x-hearth-relay"];
  if (relay === "refused" || relay === "unreachable") {
    return new ProviderError(said ?? text, { status: response.status, serverText: said, kind: relay });
  }
  const status = response.status;
  const quoted = said ? `: “${said.slice(0, 300)}”` : json ? "" : htmlHint(text);
  // LiteLLM without a database answers a key that is not its master key with 400 no_db_connection.
  const gatewayRefusal = status === 400 && json?.error?.type === "no_db_connection";
  if (status === 401 || status === 403 || gatewayRefusal) {
    return new ProviderError(`${provider.name} refused the key (${status})${quoted}. Check the API key in Providers.`,
      { status, serverText: said, kind: "auth" });
  }
  // Gateways say an unknown model with a 400 (LiteLLM: "Invalid model name passed in model=…").
  const unknownModel = status === 400 && /model/i.test(said ?? "") && /(invalid|not found|does not exist|unknown|no such)/i.test(said ?? "");
  if (status === 404 || unknownModel) {
    return new ProviderError(`${provider.name} has no such model or path (${status})${quoted}. Check the model id and the `
      + "base URL.", { status, serverText: said, kind: "missing" });
  }
  if (status === 429) return new ProviderError(`${provider.name} is rate-limiting (429)${quoted}. Wait and try again.`, { status, serverText: said });
  return new ProviderError(`${provider.name} answered ${status}${quoted}.`, { status, serverText: said ?? text.slice(0, 300) });
}

function notAStream(provider, type, text) {
  if (type.includes("text/html") || /^\s*</.test(text)) {
    return `${provider.name} answered with a web page, not a stream: the base URL probably points at a website `
      + "or a login page rather than the API. Check the request URL in Providers.";
  }
  return `${provider.name} did not stream its answer (it sent ${type || "no content type"}).`;
}

function htmlHint(text) {
  return /^\s*</.test(text) ? " with a web page rather than an API error (is the base URL right?)" : "";
}

export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
