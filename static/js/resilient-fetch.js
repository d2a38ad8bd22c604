/**
 * Model downloads that survive the network, for the service worker: a model file's fetch that fails
 * or is cut mid-body is retried with backoff, continuing from the bytes already received with a Range
 * request where the host honours one. The page (WebLLM's Cache.add) sees one whole 200 response.
 */

// What WebLLM downloads for a model: weights, the tensor list, config, tokenizer and the library.
const MODEL_FILE = /(?:\.bin|\.wasm|\/tensor-cache\.json|\/mlc-chat-config\.json|\/tokenizer\.json|\/tokenizer\.model)$/;
export const RETRIES = 5;
const FIRST_BACKOFF_MS = 200;

/** Whether a request is a model file download this module should carry. */
export function isModelFile(request) {
  return request.method === "GET" && MODEL_FILE.test(new URL(request.url).pathname);
}

class Retryable extends Error {}

/**
 * Fetch a model file, resuming after a cut. Resolves with the host's first good response's status
 * and headers and a body stream that continues across retries; rejects when the host refuses (4xx)
 * or after RETRIES failed attempts in a row.
 */
export async function resilientFetch(request, { sleep = wait } = {}) {
  const first = await attempt(request, 0, sleep);
  if (!first.body) return first;
  let received = 0;
  let reader = first.body.getReader();
  const total = Number(first.headers.get("content-length")) || null;
  const body = new ReadableStream({
    async pull(controller) {
      for (let failures = 0; ; failures += 1) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            if (total !== null && received < total) throw new Retryable(`cut at ${received} of ${total} bytes`);
            controller.close();
            return;
          }
          received += value.byteLength;
          controller.enqueue(value);
          return;
        } catch (error) {
          if (failures >= RETRIES) throw error;
          await sleep(backoff(failures));
          reader = await resume(request, received, sleep);
        }
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: first.status, statusText: first.statusText, headers: first.headers });
}

// A new reader positioned at `from`: a 206 continues; a host that ignores Range sends it all, and the
// bytes already passed on are skipped.
async function resume(request, from, sleep) {
  const response = await attempt(request, from, sleep);
  const reader = response.body.getReader();
  return response.status === 206 ? reader : skipping(reader, from);
}

async function attempt(request, from, sleep) {
  for (let failures = 0; ; failures += 1) {
    try {
      const headers = new Headers(request.headers);
      if (from) headers.set("Range", `bytes=${from}-`);
      const response = await fetch(request.url, { headers, mode: request.mode === "navigate" ? "same-origin" : request.mode,
        credentials: "omit", cache: "no-store", signal: request.signal });
      if (response.status >= 500) throw new Retryable(`${request.url} answered ${response.status}`);
      return response;
    } catch (error) {
      // Offline there is nothing to wait for: fail at once, and the page offers to load again later.
      const hopeless = request.signal?.aborted || error.name === "AbortError" || !navigator.onLine;
      if (hopeless || failures >= RETRIES) throw error;
      await sleep(backoff(failures));
    }
  }
}

function skipping(reader, count) {
  let skipped = 0;
  return {
    async read() {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done || skipped >= count) return chunk;
        const rest = count - skipped;
        skipped += Math.min(rest, chunk.value.byteLength);
        if (chunk.value.byteLength > rest) return { done: false, value: chunk.value.subarray(rest) };
      }
    },
    cancel: (reason) => reader.cancel(reason),
  };
}

function backoff(failures) {
  return FIRST_BACKOFF_MS * 2 ** failures;
}

function wait(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
