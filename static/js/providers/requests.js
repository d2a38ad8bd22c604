/**
 * The calls Hearth makes to a provider, as plain objects for net.js: the request URL (the same one
 * the form previews), its headers (the key in the type's header, the provider's extra headers) and
 * the body, shaped by the provider's rules: its addParams merged in, then parameters dropped (its
 * dropParams and the ones a server refused before, per model).
 */

import { formatOf } from "./formats/index.js";

/** The exact URL a chat with this model calls (shown live in the form). */
export function chatUrl(provider, model) {
  return provider.baseUrl + formatOf(provider.type).chatPath(provider, model);
}

/** The URL of the provider's model list, or null when its type has none. */
export function modelsUrl(provider) {
  const path = formatOf(provider.type).modelsPath(provider);
  return path === null ? null : provider.baseUrl + path;
}

/** The parameters not sent to this model: the provider's own list and what servers refused. */
export function droppedParams(provider, modelId) {
  return [...new Set([...(provider.dropParams ?? []), ...(provider.learnedDrops?.[modelId] ?? [])])];
}

/** The call for a streamed chat. params holds only what the person set (the body stays minimal). */
export function chatCall(provider, model, messages, params, key) {
  const format = formatOf(provider.type);
  const dropped = new Set(droppedParams(provider, model.id));
  const kept = Object.fromEntries(Object.entries(params).filter(([name]) => !dropped.has(name)));
  // Added parameters first: one a server refused is left out even when the provider adds it.
  const body = Object.assign(format.chatBody(model, messages, kept, provider), provider.addParams ?? {});
  for (const name of dropped) delete body[name];
  return call(provider, format.chatPath(provider, model), "POST", key, body);
}

/** The call listing the provider's models, or null when its type cannot list them. */
export function modelsCall(provider, key) {
  const path = formatOf(provider.type).modelsPath(provider);
  return path === null ? null : call(provider, path, "GET", key, null);
}

function call(provider, path, method, key, body) {
  const format = formatOf(provider.type);
  const headers = {
    ...(format.fixedHeaders ?? {}),
    ...(key ? format.keyHeaders(key) : {}),
    ...Object.fromEntries((provider.headers ?? []).map((h) => [h.name, h.value])),
  };
  if (body !== null) headers["Content-Type"] = "application/json";
  const payload = body === null ? null : JSON.stringify(body);
  // A server-defined provider is reached through the relay by id: its key is added there.
  if (provider.source === "server") return { relay: true, provider: provider.id, path, method, headers, body: payload };
  return { relay: provider.via === "relay", url: provider.baseUrl + path, method, headers, body: payload };
}

/** The parameter a 400/422 answer names as the one it refused, if any of those sent is named. */
export function refusedParam(errorMessage, sentBody) {
  if (!errorMessage) return null;
  const sent = Object.keys(JSON.parse(sentBody ?? "{}")).filter((name) => !["model", "messages", "stream"].includes(name));
  return sent.find((name) => new RegExp(`\\b${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\b`).test(errorMessage)) ?? null;
}
