/** The wire formats a provider can speak: one module each, one row here. */

import { anthropic } from "./anthropic.js";
import { azure } from "./azure.js";
import { gemini } from "./gemini.js";
import { openai } from "./openai.js";

export const FORMATS = { openai, anthropic, gemini, azure };

/** The format of a provider's type; throws for one this page does not know. */
export function formatOf(type) {
  const format = FORMATS[type];
  if (!format) throw new Error(`ProviderTypeError: no provider type called ${type}`);
  return format;
}
