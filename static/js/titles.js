/** Conversation titles written by the loaded model: a small completion in the background. */

import { withoutReasoning } from "./reasoning.js";

const TITLE_PARAMS = { max_tokens: 16, temperature: 0.3 };
const MAX_TITLE = 60;

/**
 * A few words naming a conversation from its first question, or null (engine busy, nothing usable).
 * writer: the session (a background reply from the loaded model) or another model's runtime.
 */
export async function suggestTitle(writer, question) {
  const prompt = "Write a short title (at most six words) for a conversation that starts with the message "
    + `below. Answer with the title only.\n\n${question.slice(0, 1000)}`;
  try {
    const result = await writer.reply([{ role: "user", content: prompt }], TITLE_PARAMS, () => {}, { background: true });
    return result && result.finishReason !== "abort" ? cleanTitle(result.text) : null;
  } catch {
    return null; // a title is a nicety: the chat goes on without one
  }
}

/** The title in a model's answer: its first line, without quotes, a "Title:" label or markdown marks. */
export function cleanTitle(text) {
  const line = withoutReasoning(text).split("\n").map((part) => part.trim()).find(Boolean) ?? "";
  const title = line.replace(/^(?:title\s*:\s*)/i, "").replace(/^[#*"'“”‘’`\s]+|[*"'“”‘’`\s.]+$/g, "");
  return title ? title.slice(0, MAX_TITLE) : null;
}
