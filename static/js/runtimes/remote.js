/**
 * The remote runtime: a provider's model behind Hearth's engine interface (load / reply / stop /
 * unload), so the chat treats it exactly as an in-browser model. Loading costs nothing (the model is
 * on the server); reply streams through providers/stream.js; stop aborts the call for real. Reasoning
 * arrives as <think>…</think> ahead of the answer, as in-browser reasoning models write it.
 */

import { chatCall, refusedParam } from "../providers/requests.js";
import { ProviderError, streamCall } from "../providers/stream.js";

// Roughly four characters a token: only for speeds a server did not report (labelled as estimates).
const CHARS_PER_TOKEN = 4;

export class RemoteRuntime {
  /** Runs on a server: no GPU check for its models. */
  static inBrowser = false;
  /**
   * keys: providers/keys.js; provider(id): the provider as saved now (an edit applies to the next
   * reply without loading again); onRefusedParam(provider, modelId, param): a server refused one.
   */
  static services = { keys: null, provider: () => null, onRefusedParam: () => {} };

  #loaded = null;
  #controller = null;

  get loaded() {
    return this.#loaded;
  }

  /** "Load" a provider's model: nothing to download; resolves its context length as the window. */
  async load(entry) {
    this.#loaded = { id: entry.id, entry, contextWindow: entry.model.contextLength ?? null, requestedWindow: null };
    return { contextWindow: this.#loaded.contextWindow, defaults: {} };
  }

  /** Stream a reply; resolves {text, finishReason, stats, used} like every runtime. */
  async reply(messages, params, onText) {
    if (!this.#loaded) throw new Error("ModelNotLoadedError: pick a model first");
    const { entry } = this.#loaded;
    const provider = RemoteRuntime.services.provider(entry.provider.id) ?? entry.provider;
    const model = provider.models.find((m) => m.id === entry.model.id) ?? entry.model;
    const sent = { ...params };
    try {
      return await this.#replyOnce(provider, model, messages, sent, onText);
    } catch (error) {
      // A server that names a parameter it refuses (400/422) gets the reply once more without it.
      const param = [400, 422].includes(error.status) ? refusedParam(error.serverText, error.sentBody) : null;
      if (!param) throw error;
      RemoteRuntime.services.onRefusedParam(provider, model.id, param);
      const retried = { ...provider, learnedDrops: { ...provider.learnedDrops, [model.id]: [...(provider.learnedDrops?.[model.id] ?? []), param] } };
      return this.#replyOnce(retried, model, messages, sent, onText);
    }
  }

  async #replyOnce(provider, model, messages, params, onText) {
    const key = provider.source === "server" ? null : RemoteRuntime.services.keys?.next(provider.id) ?? null;
    const call = chatCall(provider, model, messages, params, key);
    const controller = new AbortController();
    this.#controller = controller;
    let reasoning = "";
    let answer = "";
    let finishReason = null;
    let usage = {};
    let ended = false;
    const started = performance.now();
    let firstAt = null;
    const show = () => onText(joined(reasoning, answer));
    try {
      await streamCall(provider, call, {
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === "text" || event.type === "reasoning") {
            firstAt ??= performance.now();
            if (event.type === "text") answer += event.text;
            else reasoning += event.text;
            show();
          } else if (event.type === "usage") usage = { ...usage, ...definedOnly(event) };
          else if (event.type === "finish") finishReason = event.reason;
          else if (event.type === "done") ended = true;
        },
      });
    } catch (error) {
      if (error.name === "AbortError" || controller.signal.aborted) finishReason = "abort";
      else {
        error.sentBody = call.body;
        throw error;
      }
    } finally {
      this.#controller = null;
    }
    if (!finishReason && !ended) {
      throw new ProviderError(`${provider.name} ended the stream before the reply was finished. Try again.`, { kind: "stream" });
    }
    const text = joined(reasoning, answer);
    const stats = speeds(started, firstAt, usage, text);
    return { text, finishReason: finishReason ?? "stop", stats, used: null, cost: cost(model, stats) };
  }

  /** Abort the call being streamed: the endpoint sees its connection close. */
  stop() {
    this.#controller?.abort();
  }

  async unload() {
    this.stop();
    this.#loaded = null;
  }
}

// What the reply cost at the model's prices per million tokens (only when prices are set).
function cost(model, stats) {
  if (!stats || (model.priceInput === null && model.priceOutput === null)) return null;
  return ((stats.input ?? 0) * (model.priceInput ?? 0) + stats.tokens * (model.priceOutput ?? 0)) / 1e6;
}

function joined(reasoning, answer) {
  return reasoning ? `<think>${reasoning}</think>\n\n${answer}` : answer;
}

function definedOnly(event) {
  return Object.fromEntries(Object.entries(event).filter(([name, value]) => name !== "type" && value !== null && value !== undefined));
}

function speeds(started, firstAt, usage, text) {
  if (firstAt === null) return null;
  const decodeSeconds = Math.max((performance.now() - firstAt) / 1000, 1e-3);
  const firstSeconds = Math.max((firstAt - started) / 1000, 1e-3);
  const estimated = !Number.isFinite(usage.output);
  const tokens = estimated ? Math.max(1, Math.round(text.length / CHARS_PER_TOKEN)) : usage.output;
  return {
    prefill: Number.isFinite(usage.input) ? usage.input / firstSeconds : null,
    decode: tokens / decodeSeconds,
    tokens,
    estimated,
    firstTokenMs: Math.round(firstSeconds * 1000),
    input: usage.input ?? null,
    output: usage.output ?? null,
  };
}
