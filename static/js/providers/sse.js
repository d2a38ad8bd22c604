/**
 * Server-sent events, parsed as the HTML standard says (§9.2.6): lines end in CR, LF or CRLF (also
 * when the CR and the LF arrive in different reads), a line starting with ":" is a comment, "data:"
 * may or may not be followed by a space, several data lines join with "\n", a blank line dispatches,
 * and a stream that just ends drops its unfinished event. Input is text as it arrives, in any pieces.
 */

export class SSEParser {
  #buffer = "";
  #lastWasCR = false;
  #event = "";
  #data = [];
  #id = null;

  /** Feed a piece of the stream; returns the events it completed: [{event, data, id}]. */
  push(text) {
    const events = [];
    let start = 0;
    for (let i = 0; i < text.length; i += 1) {
      const char = text[i];
      if (char !== "\n" && char !== "\r") continue;
      // The LF of a CRLF split across two reads ends no second line.
      if (char === "\n" && i === 0 && this.#lastWasCR && this.#buffer === "") {
        start = 1;
        this.#lastWasCR = false;
        continue;
      }
      const line = this.#buffer + text.slice(start, i);
      this.#buffer = "";
      if (char === "\r" && text[i + 1] === "\n") i += 1;
      start = i + 1;
      this.#lastWasCR = char === "\r" && i === text.length - 1;
      const event = this.#line(line);
      if (event) events.push(event);
    }
    this.#buffer += text.slice(start);
    if (start < text.length) this.#lastWasCR = false;
    return events;
  }

  #line(line) {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
    else if (field === "id" && !value.includes("\0")) this.#id = value;
    return null;
  }

  #dispatch() {
    if (!this.#data.length) {
      this.#event = "";
      return null;
    }
    const event = { event: this.#event || "message", data: this.#data.join("\n"), id: this.#id };
    this.#event = "";
    this.#data = [];
    return event;
  }
}
