/** Catalogue entries for providers' chat models (embedding models are recorded, never offered). */

/** The catalogue id of a provider's model: "@provider/model", which no WebLLM or custom id can be. */
export function remoteEntryId(providerId, modelId) {
  return `@${providerId}/${modelId}`;
}

/** One entry per chat model of each enabled provider, named "label · provider". */
export function remoteEntries(providers) {
  return providers.filter((provider) => provider.enabled).flatMap((provider) => provider.models
    .filter((model) => model.type === "chat")
    .map((model) => ({
      id: remoteEntryId(provider.id, model.id),
      name: `${model.label} · ${provider.name}`,
      source: "provider",
      group: provider.name,
      runtime: "remote",
      provider,
      model,
      size: null,
      needs: { features: [], bufferBytes: 0 },
      description: "",
    })));
}
