/** The engine's Web Worker: WebLLM runs here, off the page's main thread. */

import { WebWorkerMLCEngineHandler } from "/static/vendor/web-llm/index.js";

const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (message) => handler.onmessage(message);
