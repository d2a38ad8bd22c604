/**
 * The in-browser runtime: WebLLM's engine in a Web Worker, behind Hearth's engine interface
 * (load / reply / stop / unload). No DOM here: callbacks in, text out. Engine calls run one at a
 * time; only stop() cuts in, to interrupt a reply.
 */

import { CreateWebWorkerMLCEngine, prebuiltAppConfig } from "/static/vendor/web-llm/index.js";
import { HEARTH_PORT } from "./webllm-port.js";

export const WORKER_URL = "/static/js/worker.js";

export class WebLLMRuntime {
  /** Runs on this machine's GPU: the GPU check applies to its models. */
  static inBrowser = true;

  #engine = null;
  #worker = null;
  #workerDied = null;
  #failWorker = null;
  #watch = null;
  #port = null;
  #questions = new Map();
  #asked = 0;
  #queue = Promise.resolve();
  #loaded = null;

  /**
   * Called with {reason, message} when the loaded model's GPU device is lost; the model is unloaded
   * then, and a reply in progress rejects with DeviceLostError.
   */
  onDeviceLost = null;

  /** {id, contextWindow} of the loaded model, or null. */
  get loaded() {
    return this.#loaded;
  }

  /**
   * Load a catalogue entry (its WebLLM ModelRecord in entry.record), replacing any loaded model.
   * onProgress receives WebLLM's InitProgressReport objects ({progress, timeElapsed, text});
   * options.contextWindow overrides the model's context window. Rejects with WebLLM's error string
   * "<Name>: <message>" (see errors.js). Resolves {contextWindow, defaults} (defaults: its chat config).
   */
  load(entry, onProgress, { contextWindow = null } = {}) {
    return this.#serially(async () => {
      this.#loaded = null;
      this.#watch = null; // reloading destroys the old device on purpose
      const appConfig = { ...prebuiltAppConfig, model_list: [entry.record] };
      const chatOpts = contextWindow ? { context_window_size: contextWindow } : undefined;
      try {
        if (this.#engine) {
          this.#engine.setAppConfig(appConfig);
          this.#engine.setInitProgressCallback(onProgress);
          await this.#unlessWorkerDies(this.#engine.reload(entry.id, chatOpts));
        } else {
          const worker = this.#startWorker();
          const config = { appConfig, initProgressCallback: onProgress };
          this.#engine = await this.#unlessWorkerDies(CreateWebWorkerMLCEngine(worker, entry.id, config, chatOpts));
        }
      } catch (error) {
        // A failed load can leave the worker's GPU device lost or half set up: start afresh next time.
        this.#stopWorker();
        throw error;
      }
      const { info } = await this.#ask({ op: "info" });
      this.#loaded = { id: entry.id, contextWindow: info.contextWindow, requestedWindow: contextWindow };
      this.#watchDevice();
      return { contextWindow: info.contextWindow, defaults: info.config };
    });
  }

  /**
   * Stream a reply to an OpenAI-style messages array with sampling params (temperature, top_p,
   * max_tokens, penalties). onText(fullTextSoFar) runs per token. Resolves {text, finishReason
   * ("stop", "length" or "abort"), stats: {prefill, decode, tokens}, used (tokens now in context)}.
   */
  reply(messages, params, onText) {
    return this.#serially(async () => {
      if (!this.#engine || !this.#loaded) throw new Error("ModelNotLoadedError: load a model first");
      const chunks = await this.#unlessWorkerDies(this.#engine.chat.completions.create({
        // Text only: images attached for a remote vision model are not for this one.
        ...params, messages: messages.map(({ role, content }) => ({ role, content })), stream: true,
        stream_options: { include_usage: true },
      }));
      const { text, finishReason, usage } = await this.#unlessWorkerDies(collect(chunks, onText));
      const { info } = await this.#ask({ op: "info" });
      return { text, finishReason, stats: speeds(usage), used: info.used };
    });
  }

  /** Token counts of texts with the loaded model's own tokenizer. */
  async countTokens(texts) {
    const { counts } = await this.#ask({ op: "count", texts });
    return counts;
  }

  /** Interrupt the reply being generated; it ends with finishReason "abort" and the text so far. */
  stop() {
    this.#engine?.interruptGenerate();
  }

  /** Unload the model and end the worker, freeing GPU memory. */
  unload() {
    return this.#serially(async () => {
      this.#watch = null;
      await this.#engine?.unload();
      this.#stopWorker();
    });
  }

  /**
   * Stop a load in progress by ending the worker (WebLLM cannot abort a download in flight from
   * outside it); its load rejects with CancelledError. Files already stored stay stored.
   */
  cancelLoad() {
    if (!this.#worker || this.#loaded) return;
    this.#failWorker("CancelledError: the load was cancelled");
    this.#stopWorker();
  }

  /** Test hook: {maxBufferSize, maxStorageBufferBindingSize} of the loaded model's GPUDevice. */
  async deviceLimits() {
    return (await this.#ask({ op: "device-limits" })).limits;
  }

  /** Test hook: destroy the loaded model's GPUDevice, as a driver reset would. */
  loseDevice() {
    return this.#ask({ op: "lose-device" });
  }

  #watchDevice() {
    const watch = this.#ask({ op: "device-lost" });
    this.#watch = watch;
    watch.then(({ lost }) => {
      if (this.#watch !== watch) return;
      this.#watch = null;
      this.#failWorker(`DeviceLostError: the GPU device was lost (${lost.reason || "unknown"}: ${lost.message})`);
      this.#stopWorker();
      this.onDeviceLost?.(lost);
    }, () => {});
  }

  #serially(task) {
    const run = this.#queue.then(() => task());
    this.#queue = run.catch(() => {});
    return run;
  }

  #startWorker() {
    this.#worker = new Worker(WORKER_URL, { type: "module" });
    this.#workerDied = new Promise((_, reject) => {
      this.#failWorker = reject;
      this.#worker.addEventListener("error", (event) => {
        reject(`WorkerError: the engine's worker stopped (${event.message || "it could not start"})`);
      });
    });
    this.#workerDied.catch(() => {}); // only ever awaited through #unlessWorkerDies
    const channel = new MessageChannel();
    channel.port1.onmessage = ({ data }) => {
      const pending = this.#questions.get(data.id);
      this.#questions.delete(data.id);
      if (data.error) pending?.reject(data.error);
      else pending?.resolve(data);
    };
    this.#port = channel.port1;
    this.#worker.postMessage({ kind: HEARTH_PORT }, [channel.port2]);
    return this.#worker;
  }

  #ask(question) {
    if (!this.#port) return Promise.reject(new Error("ModelNotLoadedError: load a model first"));
    this.#asked += 1;
    const id = this.#asked;
    const answer = new Promise((resolve, reject) => this.#questions.set(id, { resolve, reject }));
    this.#port.postMessage({ ...question, id });
    return this.#unlessWorkerDies(answer);
  }

  // WebLLM's worker client waits forever if the worker itself dies: race every call against that.
  #unlessWorkerDies(promise) {
    return Promise.race([promise, this.#workerDied]);
  }

  #stopWorker() {
    this.#worker?.terminate();
    this.#worker = null;
    this.#engine = null;
    this.#port = null;
    this.#loaded = null;
    for (const pending of this.#questions.values()) pending.reject("WorkerError: the engine's worker stopped");
    this.#questions.clear();
  }
}

async function collect(chunks, onText) {
  let text = "";
  let finishReason = null;
  let usage = null;
  for await (const chunk of chunks) {
    const choice = chunk.choices[0];
    if (choice?.delta?.content) {
      text += choice.delta.content;
      onText(text);
    }
    finishReason = choice?.finish_reason ?? finishReason;
    usage = chunk.usage ?? usage;
  }
  return { text, finishReason, usage };
}

function speeds(usage) {
  const extra = usage?.extra;
  if (!extra) return null;
  return { prefill: extra.prefill_tokens_per_s, decode: extra.decode_tokens_per_s, tokens: usage.completion_tokens };
}
