/**
 * Anthropic's Messages API: POST {base}/v1/messages with x-api-key and anthropic-version, and the
 * header that lets a browser call it directly. max_tokens is required; the system prompt is a field
 * of its own. The stream has named events: message_start (input tokens), content_block_delta (text
 * or thinking), message_delta (stop reason, output tokens), message_stop, ping, and error — which may
 * come after a 200.
 */

import { imageData, textOf } from "./parts.js";

const DEFAULT_MAX_TOKENS = 4096;
const STOP_REASONS = { max_tokens: "length", end_turn: "stop", stop_sequence: "stop", refusal: "filtered" };

export const anthropic = {
  type: "anthropic",
  label: "Anthropic",
  basePlaceholder: "https://api.anthropic.com",
  pastedSuffix: /\/v1\/messages\/?$/,
  keyHeaders: (key) => ({ "x-api-key": key }),
  fixedHeaders: { "anthropic-version": "2023-06-01", "anthropic-dangerous-direct-browser-access": "true" },
  chatPath: () => "/v1/messages",
  modelsPath: () => "/v1/models",
  chatBody: (model, messages, params) => {
    const system = messages.filter((m) => m.role === "system").map((m) => textOf(m.content)).join("\n\n");
    const { max_tokens: maxTokens, temperature, top_p: topP, stop } = params;
    const body = {
      model: model.id,
      max_tokens: maxTokens ?? model.maxOutputTokens ?? DEFAULT_MAX_TOKENS,
      messages: messages.filter((m) => m.role !== "system").map(anthropicMessage),
      stream: true,
    };
    if (system) body.system = system;
    if (temperature !== undefined) body.temperature = Math.min(temperature, 1);
    if (topP !== undefined) body.top_p = topP;
    if (stop !== undefined) body.stop_sequences = [].concat(stop);
    return body;
  },
  events: ({ event, data }) => {
    const message = JSON.parse(data);
    const type = message.type ?? event;
    if (type === "message_start") return [{ type: "usage", input: message.message?.usage?.input_tokens ?? null }];
    if (type === "content_block_delta") {
      const delta = message.delta ?? {};
      if (delta.type === "text_delta") return [{ type: "text", text: delta.text }];
      if (delta.type === "thinking_delta") return [{ type: "reasoning", text: delta.thinking }];
      return [];
    }
    if (type === "message_delta") {
      const events = [];
      if (message.usage?.output_tokens !== undefined) events.push({ type: "usage", output: message.usage.output_tokens });
      if (message.delta?.stop_reason) events.push({ type: "finish", reason: STOP_REASONS[message.delta.stop_reason] ?? "stop" });
      return events;
    }
    if (type === "message_stop") return [{ type: "done" }];
    if (type === "error") return [{ type: "error", message: anthropic.errorText(message) }];
    return []; // ping, content_block_start / stop
  },
  models: (json) => (Array.isArray(json?.data) ? json.data : []).map((m) => ({ id: String(m.id), label: m.display_name })),
  errorText: (json) => json?.error?.message ?? (typeof json?.error === "string" ? json.error : null),
};

function anthropicMessage({ role, content, images = [] }) {
  if (!images.length) return { role, content: textOf(content) };
  const pictures = images.map((url) => {
    const { mediaType, data } = imageData(url);
    return { type: "image", source: { type: "base64", media_type: mediaType, data } };
  });
  return { role, content: [...pictures, { type: "text", text: textOf(content) }] };
}
