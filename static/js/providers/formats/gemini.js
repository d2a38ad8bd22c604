/**
 * Google's Gemini API: POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse with the key in
 * x-goog-api-key. Roles are user and model; the system prompt is systemInstruction. Each `data:` event
 * is a whole GenerateContentResponse (text in candidates[0].content.parts, thoughts marked thought:
 * true); there is no [DONE], the stream just ends. Model names come prefixed "models/".
 */

import { imageData, textOf } from "./parts.js";

const FINISH = { STOP: "stop", MAX_TOKENS: "length", SAFETY: "filtered", RECITATION: "filtered" };

export const gemini = {
  type: "gemini",
  label: "Google Gemini",
  basePlaceholder: "https://generativelanguage.googleapis.com",
  pastedSuffix: /\/v1(beta)?\/models.*$/,
  keyHeaders: (key) => ({ "x-goog-api-key": key }),
  chatPath: (provider, model) => `/v1beta/models/${encodeURIComponent(model.id)}:streamGenerateContent?alt=sse`,
  modelsPath: () => "/v1beta/models",
  chatBody: (model, messages, params) => {
    const system = messages.filter((m) => m.role === "system").map((m) => textOf(m.content)).join("\n\n");
    const config = {};
    const names = { temperature: "temperature", top_p: "topP", max_tokens: "maxOutputTokens",
      frequency_penalty: "frequencyPenalty", presence_penalty: "presencePenalty", stop: "stopSequences" };
    for (const [name, value] of Object.entries(params)) if (names[name]) config[names[name]] = value;
    const body = { contents: messages.filter((m) => m.role !== "system").map(geminiContent) };
    if (system) body.systemInstruction = { parts: [{ text: system }] };
    if (Object.keys(config).length) body.generationConfig = config;
    return body;
  },
  events: ({ data }) => {
    const response = JSON.parse(data);
    if (response.error) return [{ type: "error", message: gemini.errorText(response) }];
    const events = [];
    const candidate = response.candidates?.[0];
    for (const part of candidate?.content?.parts ?? []) {
      if (part.text) events.push({ type: part.thought ? "reasoning" : "text", text: part.text });
    }
    const usage = response.usageMetadata;
    if (usage) events.push({ type: "usage", input: usage.promptTokenCount ?? null, output: usage.candidatesTokenCount ?? null });
    if (candidate?.finishReason) events.push({ type: "finish", reason: FINISH[candidate.finishReason] ?? "stop" });
    return events;
  },
  models: (json) => (Array.isArray(json?.models) ? json.models : [])
    .map((m) => ({ id: String(m.name ?? "").replace(/^models\//, ""), label: m.displayName })),
  errorText: (json) => {
    const error = Array.isArray(json) ? json[0]?.error : json?.error;
    return error?.message ?? (typeof error === "string" ? error : null);
  },
};

function geminiContent({ role, content, images = [] }) {
  const parts = images.map((url) => {
    const { mediaType, data } = imageData(url);
    return { inline_data: { mime_type: mediaType, data } };
  });
  return { role: role === "assistant" ? "model" : "user", parts: [...parts, { text: textOf(content) }] };
}
