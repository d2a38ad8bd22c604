/**
 * The WebLLM engine, run in a Web Worker so the page never freezes. No DOM here: callbacks in,
 * text out. Engine calls run one at a time; only stop() cuts in, to interrupt a reply.
 */

import { CreateWebWorkerMLCEngine } from "/static/vendor/web-llm/index.js";

export const WORKER_URL = "/static/js/worker.js";

export class ChatEngine {
  #engine = null;
  #worker = null;
  #workerDied = null;
  #queue = Promise.resolve();
  #modelId = null;

  /** The id of the loaded model, or null. */
  get modelId() {
    return this.#modelId;
  }

  /**
   * Load a model from appConfig (WebLLM's {model_list, ...}), replacing any loaded one.
   * onProgress receives WebLLM's InitProgressReport objects ({progress, timeElapsed, text}).
   * Rejects with WebLLM's error string "<Name>: <message>" (see errors.js).
   */
  load(modelId, appConfig, onProgress) {
    return this.#serially(async () => {
      this.#modelId = null;
      try {
        if (this.#engine) {
          this.#engine.setAppConfig(appConfig);
          this.#engine.setInitProgressCallback(onProgress);
          await this.#unlessWorkerDies(this.#engine.reload(modelId));
        } else {
          const worker = this.#startWorker();
          const config = { appConfig, initProgressCallback: onProgress };
          this.#engine = await this.#unlessWorkerDies(CreateWebWorkerMLCEngine(worker, modelId, config));
        }
      } catch (error) {
        // A failed load can leave the worker's GPU device lost or half set up: start afresh next time.
        this.#stopWorker();
        throw error;
      }
      this.#modelId = modelId;
    });
  }

  /**
   * Stream a reply to an OpenAI-style messages array. onText(fullTextSoFar) runs per token.
   * Resolves {text, finishReason ("stop", "length" or "abort"), usage (with usage.extra speeds)}.
   */
  reply(messages, onText) {
    return this.#serially(async () => {
      if (!this.#engine || !this.#modelId) throw new Error("ModelNotLoadedError: load a model first");
      const chunks = await this.#unlessWorkerDies(this.#engine.chat.completions.create({
        messages, stream: true, stream_options: { include_usage: true },
      }));
      return this.#unlessWorkerDies(collect(chunks, onText));
    });
  }

  /** Interrupt the reply being generated; it ends with finishReason "abort" and the text so far. */
  stop() {
    this.#engine?.interruptGenerate();
  }

  /** Unload the model and end the worker, freeing GPU memory. */
  unload() {
    return this.#serially(async () => {
      await this.#engine?.unload();
      this.#stopWorker();
      this.#modelId = null;
    });
  }

  #serially(task) {
    const run = this.#queue.then(() => task());
    this.#queue = run.catch(() => {});
    return run;
  }

  #startWorker() {
    this.#worker = new Worker(WORKER_URL, { type: "module" });
    this.#workerDied = new Promise((_, reject) => {
      this.#worker.addEventListener("error", (event) => {
        reject(`WorkerError: the engine's worker stopped (${event.message || "it could not start"})`);
      });
    });
    this.#workerDied.catch(() => {}); // only ever awaited through #unlessWorkerDies
    return this.#worker;
  }

  // WebLLM's worker client waits forever if the worker itself dies: race every call against that.
  #unlessWorkerDies(promise) {
    return Promise.race([promise, this.#workerDied]);
  }

  #stopWorker() {
    this.#worker?.terminate();
    this.#worker = null;
    this.#engine = null;
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
