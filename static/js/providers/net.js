/**
 * The page's side of the network worker (net-worker.js): calls to providers, direct or through
 * Hearth's relay, as responses whose body arrives as text pieces. No DOM here.
 */

const WORKER_URL = "/provider-worker.js";
const RELAY_URL = "/relay";

/** A call that did not get an answer: name is "NetworkError", "AbortError", "FirstByteTimeout" or "IdleTimeout". */
export class CallError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

/** The token this server's page carries for its owner-only routes (webapp/owner.py). */
export function pageToken() {
  return document.querySelector('meta[name="hearth-token"]')?.content ?? "";
}

export class NetClient {
  #worker = null;
  #calls = new Map();
  #next = 0;

  /** Start a fresh worker: its policy lists the origins registered up to now. */
  restart() {
    this.#worker?.terminate();
    for (const pending of this.#calls.values()) pending.fail(new CallError("AbortError", "the network worker restarted"));
    this.#calls.clear();
    this.#worker = null;
  }

  /**
   * Make a call: {url, method, headers, body, firstByteMs, idleMs, signal}; with relay: true it goes
   * through Hearth's relay ({provider, path} instead of url for a server-defined provider).
   * Resolves {status, headers, pieces()} once the head is in; pieces() yields the body as text.
   */
  call({ relay = false, signal = null, firstByteMs = 0, idleMs = 0, ...request }) {
    const message = relay ? relayed(request) : { url: request.url, method: request.method ?? "GET",
      headers: request.headers ?? {}, body: request.body ?? null, mode: request.mode ?? "cors" };
    this.#next += 1;
    const id = this.#next;
    const queue = [];
    let wake = null;
    let ended = false;
    let failure = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    return new Promise((resolve, reject) => {
      const pending = {
        head: (data) => resolve({ status: data.status, headers: data.headers, relayed: relay, pieces }),
        chunk: (text) => {
          queue.push(text);
          notify();
        },
        end: () => {
          ended = true;
          this.#calls.delete(id);
          notify();
        },
        fail: (error) => {
          failure = error;
          this.#calls.delete(id);
          reject(error);
          notify();
        },
      };
      async function* pieces() {
        for (;;) {
          if (queue.length) yield queue.shift();
          else if (failure) throw failure;
          else if (ended) return;
          else await new Promise((r) => { wake = r; });
        }
      }
      this.#calls.set(id, pending);
      signal?.addEventListener("abort", () => this.#worker?.postMessage({ op: "abort", id }), { once: true });
      this.#ensureWorker().postMessage({ op: "fetch", id, ...message, firstByteMs, idleMs });
    });
  }

  #ensureWorker() {
    if (this.#worker) return this.#worker;
    this.#worker = new Worker(WORKER_URL);
    this.#worker.onmessage = ({ data }) => {
      const pending = this.#calls.get(data.id);
      if (!pending) return;
      if (data.kind === "head") pending.head(data);
      else if (data.kind === "chunk") pending.chunk(data.text);
      else if (data.kind === "end") pending.end();
      else if (data.kind === "fail") pending.fail(new CallError(failureName(data.error), data.error.message));
    };
    return this.#worker;
  }
}

function failureName({ name }) {
  if (["AbortError", "FirstByteTimeout", "IdleTimeout"].includes(name)) return name;
  return "NetworkError";
}

function relayed({ url, provider, path, method = "GET", headers = {}, body = null }) {
  const envelope = provider ? { provider, path, method, headers, body } : { url, method, headers, body };
  return {
    url: RELAY_URL,
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Hearth-Token": pageToken() },
    body: JSON.stringify(envelope),
  };
}

/** Read a whole body as text (for JSON answers and error pages). */
export async function bodyText(response) {
  let text = "";
  for await (const piece of response.pieces()) text += piece;
  return text;
}

/** The one client of this page. */
export const net = new NetClient();
