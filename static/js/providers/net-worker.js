/**
 * The network worker: every call to a remote provider is made here, never in the page. The server
 * sends this script with a Content-Security-Policy whose connect-src lists the provider origins the
 * person registered (webapp/connect_origins.py), so the page itself can reach no provider at all and
 * this worker only the registered ones. It streams bodies back as text, and aborts on request.
 *
 * In:  {op: "fetch", id, url, method, headers, body, mode, firstByteMs, idleMs} | {op: "abort", id}
 *      (mode "no-cors" asks only whether the server answers at all: the answer is opaque)
 * Out: {id, kind: "head", status, headers} · {id, kind: "chunk", text} · {id, kind: "end"}
 *      · {id, kind: "fail", error: {name, message}}
 */

const calls = new Map();

self.onmessage = ({ data }) => {
  if (data.op === "abort") calls.get(data.id)?.abort("AbortError");
  else if (data.op === "fetch") call(data);
};

async function call({ id, url, method, headers, body, mode = "cors", firstByteMs, idleMs }) {
  const controller = new AbortController();
  calls.set(id, { abort: (reason) => controller.abort(reason) });
  let timer = null;
  const arm = (ms, name) => {
    clearTimeout(timer);
    if (ms) timer = setTimeout(() => controller.abort(name), ms);
  };
  try {
    arm(firstByteMs, "FirstByteTimeout");
    const response = await fetch(url, {
      method, headers, body, mode, signal: controller.signal, credentials: "omit", cache: "no-store",
      redirect: "follow", referrerPolicy: "no-referrer",
    });
    self.postMessage({ id, kind: "head", status: response.status, headers: Object.fromEntries(response.headers) });
    if (!response.body) {
      self.postMessage({ id, kind: "end" }); // an opaque (no-cors) or empty answer
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // Until the first piece of the body the first-byte limit runs; after each piece, the idle one.
      arm(idleMs, "IdleTimeout");
      self.postMessage({ id, kind: "chunk", text: value });
    }
    self.postMessage({ id, kind: "end" });
  } catch (error) {
    const reason = controller.signal.aborted ? controller.signal.reason : null;
    const name = typeof reason === "string" ? reason : error?.name ?? "Error";
    self.postMessage({ id, kind: "fail", error: { name, message: String(error?.message ?? error) } });
  } finally {
    clearTimeout(timer);
    calls.delete(id);
  }
}
