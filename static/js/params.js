/**
 * Sampling parameters: what each one is, its range, and which ones go to the engine per reply.
 * An empty value means "the model's own default" (from its mlc-chat-config.json).
 */

export const PARAMS = [
  { name: "temperature", label: "Temperature", min: 0, max: 2, step: 0.05,
    hint: "Higher is more varied, 0 always picks the likeliest token." },
  { name: "top_p", label: "Top p", min: 0, max: 1, step: 0.01, hint: "Sample only from the likeliest tokens that add up to this." },
  { name: "max_tokens", label: "Max tokens", min: 1, max: 1 << 20, step: 1, integer: true,
    hint: "The longest reply, in tokens." },
  { name: "frequency_penalty", label: "Frequency penalty", min: -2, max: 2, step: 0.1,
    hint: "Discourages tokens by how often they appeared." },
  { name: "presence_penalty", label: "Presence penalty", min: -2, max: 2, step: 0.1,
    hint: "Discourages tokens that appeared at all." },
  { name: "repetition_penalty", label: "Repetition penalty", min: 0.01, max: 5, step: 0.05,
    hint: "Above 1 makes repeating the prompt's tokens less likely." },
  { name: "context_window_size", label: "Context window", min: 16, max: 1 << 20, step: 1, integer: true,
    hint: "Tokens the model keeps in mind; smaller saves GPU memory. Takes effect when the model loads.", load: true },
];
const BY_NAME = new Map(PARAMS.map((param) => [param.name, param]));

/**
 * Check a parameters object (from a form, storage or a file). Returns {params, errors}: params holds
 * only the given, valid values; errors maps a parameter's name to what is wrong with it.
 */
export function validateParams(input) {
  const params = {};
  const errors = {};
  if (input !== undefined && input !== null && (typeof input !== "object" || Array.isArray(input))) {
    return { params, errors: { params: "Parameters must be an object of names and numbers." } };
  }
  for (const [name, raw] of Object.entries(input ?? {})) {
    const param = BY_NAME.get(name);
    if (!param) {
      errors[name] = `Unknown parameter ${name}.`;
      continue;
    }
    if (raw === null || raw === "" || raw === undefined) continue;
    const value = typeof raw === "string" ? Number(raw) : raw;
    if (typeof value !== "number" || !Number.isFinite(value) || value < param.min || value > param.max
        || (param.integer && !Number.isInteger(value))) {
      const kind = param.integer ? "a whole number" : "a number";
      errors[name] = `${param.label} is ${kind} from ${param.min} to ${param.max}, or leave it empty.`;
      continue;
    }
    params[name] = value;
  }
  return { params, errors };
}

/** The parameters WebLLM takes per request (the context window is given when the model loads). */
export function requestParams(params) {
  return Object.fromEntries(Object.entries(params).filter(([name]) => !BY_NAME.get(name)?.load));
}

/** The model's own defaults, from its mlc-chat-config.json, for the parameters above. */
export function modelDefaults(chatConfig) {
  if (!chatConfig) return {};
  return Object.fromEntries(PARAMS.filter((param) => Number.isFinite(chatConfig[param.name]))
    .map((param) => [param.name, chatConfig[param.name]]));
}
