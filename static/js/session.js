/**
 * The session: which model is loaded and what the engine is doing. It alone writes the state
 * (idle → loading → ready → generating → ready, and error); the picker, composer and progress read it
 * through subscribe(). One runtime instance per kind of runtime, reused across loads.
 */

import { createRuntime } from "./runtimes/index.js";

export class Session {
  #state = { name: "idle", entry: null, progress: null, error: null, lost: null, contextWindow: null, defaults: null };
  #listeners = new Set();
  #runtimes = new Map();
  #runtime = null;
  #background = null;

  /**
   * A snapshot: {name, entry (loaded or loading), progress, error, lost ({entry, contextWindow} when the
   * GPU device was lost), contextWindow, defaults}.
   */
  get state() {
    return this.#state;
  }

  /** listener(state) now and after every change. */
  subscribe(listener) {
    this.#listeners.add(listener);
    listener(this.#state);
    return () => this.#listeners.delete(listener);
  }

  /** Whether this entry, with this context window, is what the engine holds now. */
  holds(entry, contextWindow = null) {
    const loaded = this.#runtime?.loaded;
    return Boolean(loaded && loaded.id === entry.id && (loaded.requestedWindow ?? null) === (contextWindow ?? null)
      && ["ready", "generating"].includes(this.#state.name));
  }

  /** Load an entry through its runtime (progress reports in state.progress); rejects with the runtime's error. */
  async load(entry, { contextWindow = null } = {}) {
    if (["loading", "generating"].includes(this.#state.name)) throw new Error("BusyError: the engine is busy");
    await this.#stopBackground();
    this.#set({ name: "loading", entry, progress: { progress: 0, text: "" }, error: null, lost: null });
    try {
      const runtime = this.#runtimeFor(entry);
      if (this.#runtime && this.#runtime !== runtime) await this.#runtime.unload();
      this.#runtime = runtime;
      const onProgress = (progress) => this.#set({ progress });
      const { contextWindow: window, defaults } = await runtime.load(entry, onProgress, { contextWindow });
      this.#set({ name: "ready", progress: null, contextWindow: window, defaults });
    } catch (error) {
      const cancelled = String(error).startsWith("CancelledError");
      this.#set({ name: cancelled ? "idle" : "error", progress: null, error: cancelled ? null : error,
        contextWindow: null, defaults: null, ...(cancelled ? { entry: null } : {}) });
      throw error;
    }
  }

  /**
   * Stream a reply from the loaded model; the state is "generating" meanwhile. A background reply
   * (a title, say) leaves the state "ready" and is stopped as soon as anything else needs the engine;
   * it resolves null when the engine was not free for it.
   */
  async reply(messages, params, onText, { background = false } = {}) {
    if (background) return this.#replyInBackground(messages, params, onText);
    await this.#stopBackground();
    if (this.#state.name !== "ready") throw new Error("ModelNotLoadedError: load a model first");
    this.#set({ name: "generating" });
    try {
      return await this.#runtime.reply(messages, params, onText);
    } finally {
      this.#set({ name: this.#runtime.loaded ? "ready" : "error" });
    }
  }

  async #replyInBackground(messages, params, onText) {
    if (this.#state.name !== "ready" || this.#background) return null;
    const run = this.#runtime.reply(messages, params, onText);
    this.#background = run.catch(() => null);
    try {
      return await run;
    } finally {
      this.#background = null;
    }
  }

  async #stopBackground() {
    if (!this.#background) return;
    this.#runtime.stop();
    await this.#background;
  }

  /** Token counts with the loaded model's tokenizer, or null when its runtime cannot count. */
  async countTokens(texts) {
    return this.#runtime?.countTokens ? this.#runtime.countTokens(texts) : null;
  }

  stop() {
    this.#runtime?.stop();
  }

  /** Cancel the load in progress (it rejects with CancelledError and the state goes back to idle). */
  cancelLoad() {
    if (this.#state.name === "loading") this.#runtime?.cancelLoad?.();
  }

  async unload() {
    await this.#runtime?.unload();
    this.#set({ name: "idle", entry: null, progress: null, error: null, lost: null, contextWindow: null, defaults: null });
  }

  /** Test hook: the loaded model's GPU device limits (see WebLLMRuntime.deviceLimits). */
  deviceLimits() {
    return this.#runtime?.deviceLimits?.();
  }

  /** Test hook: take the GPU device away from the loaded model (see WebLLMRuntime.loseDevice). */
  loseDevice() {
    return this.#runtime?.loseDevice?.();
  }

  #runtimeFor(entry) {
    if (!this.#runtimes.has(entry.runtime)) {
      const runtime = createRuntime(entry);
      runtime.onDeviceLost = (lost) => this.#deviceLost(runtime, lost);
      this.#runtimes.set(entry.runtime, runtime);
    }
    return this.#runtimes.get(entry.runtime);
  }

  // The model is gone from the GPU; the conversation is the page's and stays. state.lost says what to reload.
  #deviceLost(runtime, { reason, message }) {
    if (runtime !== this.#runtime) return;
    const { entry, contextWindow } = this.#state;
    this.#set({ name: "error", progress: null, error: `DeviceLostError: ${reason || "unknown"}: ${message}`,
      lost: { entry, contextWindow }, contextWindow: null, defaults: null });
  }

  #set(change) {
    this.#state = { ...this.#state, ...change };
    for (const listener of this.#listeners) listener(this.#state);
  }
}
