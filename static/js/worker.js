/**
 * The engine's Web Worker: WebLLM runs here, off the page's main thread. Besides WebLLM's own
 * messages it answers Hearth's questions about the loaded model (token counts, its chat config) on a
 * MessagePort of their own, so WebLLM's client never sees a message kind it does not know.
 */

import { WebWorkerMLCEngineHandler } from "/static/vendor/web-llm/index.js";
import { HEARTH_PORT } from "./runtimes/webllm-port.js";

const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (message) => {
  if (message.data?.kind === HEARTH_PORT) message.ports[0].onmessage = (event) => answer(message.ports[0], event.data);
  else handler.onmessage(message);
};

function answer(port, { id, op, texts }) {
  try {
    // WebLLM 0.2.86 has no public tokenizer API; its loaded pipeline holds the model's own tokenizer
    // and final chat config (overrides applied). Pinned version: tests/browser check these stay true.
    const pipeline = [...handler.engine.loadedModelIdToPipeline.values()][0];
    if (!pipeline) throw new Error("ModelNotLoadedError: no model is loaded");
    if (op === "count") port.postMessage({ id, counts: texts.map((text) => pipeline.tokenizer.encode(text).length) });
    else if (op === "info") {
      port.postMessage({ id, info: { config: pipeline.config, contextWindow: pipeline.contextWindowSize,
        used: pipeline.filledKVCacheLength } });
    } else if (op === "device-lost") {
      // Answered only if the model's GPUDevice is lost: the page's watch on it (out of memory, driver reset).
      gpuDevice(pipeline).lost.then(({ reason, message }) => port.postMessage({ id, lost: { reason, message } }));
    } else if (op === "device-limits") {
      // Test hook: the limits the engine's device was given (gpu-memory.js compares against them).
      const { maxBufferSize, maxStorageBufferBindingSize } = gpuDevice(pipeline).limits;
      port.postMessage({ id, limits: { maxBufferSize, maxStorageBufferBindingSize } });
    } else if (op === "lose-device") {
      // Test hook: destroy the device the way a driver reset takes it away.
      gpuDevice(pipeline).destroy();
      port.postMessage({ id });
    } else throw new Error(`unknown question ${op}`);
  } catch (error) {
    port.postMessage({ id, error: String(error) });
  }
}

function gpuDevice(pipeline) {
  return pipeline.tvm.lib.webGPUContext.device;
}
