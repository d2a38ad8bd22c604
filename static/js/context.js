/**
 * The context window: how many tokens a conversation takes, and which of its oldest turns to leave
 * out so a request always fits (the system prompt and the newest question are always kept).
 */

// The chat templates WebLLM ships wrap each message in a few tokens of role markers and separators
// (ChatML: "<|im_start|>user\n" … "<|im_end|>\n", 5; Llama 3: 5; Gemma: 6): 8 leaves room.
export const MESSAGE_OVERHEAD = 8;
// The template's own text around the whole prompt (its default system message, the reply's header).
export const PROMPT_OVERHEAD = 32;
// What is kept free for the reply when max_tokens is not set: this, or a quarter of a small window.
export const DEFAULT_REPLY_ROOM = 256;

/** Tokens kept free for the reply. */
export function replyRoom(params, contextWindow) {
  return params.max_tokens ?? Math.min(DEFAULT_REPLY_ROOM, Math.floor(contextWindow / 4));
}

/**
 * Which messages to send. messages[i] = {role, count} (its token count), systemCount the system
 * prompt's. Returns {start (index of the first message kept, always a user's), tokens (estimated
 * prompt), fits}: fits is false when even the newest message alone does not fit.
 */
export function fitToWindow({ messages, systemCount, contextWindow, room }) {
  const fixed = PROMPT_OVERHEAD + (systemCount ? systemCount + MESSAGE_OVERHEAD : 0);
  const budget = contextWindow - room - fixed;
  const cost = messages.map((message) => message.count + MESSAGE_OVERHEAD);
  let start = 0;
  let total = cost.reduce((a, b) => a + b, 0);
  // Leave out whole turns from the oldest, so the first message kept is a question.
  while (start < messages.length - 1 && (total > budget || messages[start].role !== "user")) {
    total -= cost[start];
    start += 1;
  }
  return { start, tokens: total + fixed, fits: total <= budget };
}
