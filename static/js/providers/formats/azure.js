/**
 * Azure OpenAI. Classic: POST {base}/openai/deployments/{deployment}/chat/completions?api-version=…
 * with the key in `api-key` and no model in the body; "v1": POST {base}/openai/v1/chat/completions
 * with model = the deployment. Its chunks are OpenAI's, with content-filter results beside them (and
 * a first chunk with no choices at all). Deployments cannot be listed through the chat API: a
 * classic provider's models are added by hand.
 */

import { chatCompletionEvents, errorText, openai } from "./openai.js";

export const azure = {
  type: "azure",
  label: "Azure OpenAI",
  basePlaceholder: "https://my-resource.openai.azure.com",
  pastedSuffix: /\/openai\/.*$/,
  keyHeaders: (key) => ({ "api-key": key }),
  chatPath: (provider, model) => (provider.azureMode === "v1"
    ? "/openai/v1/chat/completions"
    : `/openai/deployments/${encodeURIComponent(model.id)}/chat/completions?api-version=${encodeURIComponent(provider.apiVersion || "2024-10-21")}`),
  modelsPath: (provider) => (provider.azureMode === "v1" ? "/openai/v1/models" : null),
  chatBody: (model, messages, params, provider) => {
    const body = openai.chatBody(model, messages, params);
    if (provider.azureMode !== "v1") delete body.model;
    return body;
  },
  events: chatCompletionEvents,
  models: openai.models,
  errorText,
};
