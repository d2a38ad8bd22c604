/**
 * The composer: the message box, Send and Stop, and the context line under it (tokens used against
 * the window, and what was left out to fit). Enter sends, Shift+Enter breaks the line.
 */

const $ = (id) => document.getElementById(id);

export class Composer {
  #onSend;
  #state = "idle";
  #canSend = false;

  /** onSend(text) when the person sends; onStop() when they press Stop. */
  constructor({ onSend, onStop }) {
    this.#onSend = onSend;
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#send();
    });
    $("prompt").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("stop").addEventListener("click", () => onStop());
  }

  /** Follow the session's state name and whether the selected model can be used. */
  update({ state, canSend, modelName }) {
    this.#state = state;
    this.#canSend = canSend;
    const busy = state === "loading" || state === "generating";
    $("send").disabled = busy || !canSend;
    $("stop").hidden = state !== "generating";
    $("prompt").placeholder = !canSend ? "Pick a model that runs here to start chatting"
      : state === "ready" || state === "generating" ? `Message ${modelName} (Enter sends, Shift+Enter for a new line)`
        : `Message ${modelName}: sending loads it (Enter sends, Shift+Enter for a new line)`;
  }

  /** Put text back in the box (after a failed send) and focus it. */
  restore(text) {
    if (text) $("prompt").value = text;
    $("prompt").focus();
  }

  /** "412 / 2,048 tokens", and a note when older turns were left out; null tokens clears the line. */
  showContext({ tokens, window, dropped }) {
    const meter = $("context-meter");
    meter.textContent = Number.isFinite(tokens) && window ? `${tokens.toLocaleString()} / ${window.toLocaleString()} tokens` : "";
    $("context-note").textContent = dropped
      ? `The ${dropped} oldest message${dropped === 1 ? " was" : "s were"} left out so the conversation fits the `
        + `model's context window of ${window.toLocaleString()} tokens.` : "";
  }

  #send() {
    const text = $("prompt").value.trim();
    if (!text || !this.#canSend || this.#state === "loading" || this.#state === "generating") return;
    $("prompt").value = "";
    this.#onSend(text);
  }
}

/** The page's shortcuts: Esc stops a reply, Ctrl/Cmd+Shift+O starts a new chat. */
export function bindShortcuts({ onStop, onNewChat }) {
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !document.querySelector("dialog[open]")) onStop();
    if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === "o") {
      event.preventDefault();
      onNewChat();
    }
  });
}
