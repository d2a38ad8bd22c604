// Load a model with the unmodified WebLLM engine and decode greedily, recording what it samples.
// Evaluated by Playwright as one async function; WebLLM comes from the page's own origin.
// Each request is {prompt} (completions.create: the text as is) or {messages} (chat.completions.create:
// WebLLM applies the model's chat template). modelUrl and libUrl default to the page origin's own
// /models/<id>/resolve/main/ and /libs/<id>.wasm; another model host's URLs may be given instead, and
// integrity (ModelRecord.integrity: SRI hashes WebLLM checks before it uses the files).
async ({ origin, modelId, requests, maxTokens, modelUrl, libUrl, integrity }) => {
  const webllm = await import(`${origin}/static/vendor/web-llm/index.js`);
  let current = null;
  // A logit processor sees the logits WebLLM samples from and the token its GPU sampler picked;
  // returning the logits unchanged leaves sampling exactly as it is without one.
  const recorder = {
    processLogits(logits) {
      current.logits.push(Array.from(logits));
      return logits;
    },
    processSampledToken(token) {
      current.tokens.push(token);
    },
    resetState() {},
  };
  const appConfig = {
    model_list: [
      {
        model: modelUrl ?? `${origin}/models/${modelId}/resolve/main/`,
        model_id: modelId,
        model_lib: libUrl ?? `${origin}/libs/${modelId}.wasm`,
        ...(integrity ? { integrity: { ...integrity, onFailure: "error" } } : {}),
      },
    ],
  };
  const engine = new webllm.MLCEngine({ appConfig, logitProcessorRegistry: new Map([[modelId, recorder]]) });
  await engine.reload(modelId);
  const results = [];
  for (const request of requests) {
    current = { tokens: [], logits: [] };
    // Plain greedy decoding: no penalty, whatever mlc-chat-config.json's defaults say.
    const options = {
      max_tokens: maxTokens,
      temperature: 0,
      repetition_penalty: 1.0,
      frequency_penalty: 0,
      presence_penalty: 0,
      ignore_eos: true,
    };
    let text;
    let usage;
    if (request.messages) {
      await engine.resetChat();
      const reply = await engine.chat.completions.create({ messages: request.messages, ...options });
      [text, usage] = [reply.choices[0].message.content, reply.usage];
    } else {
      const reply = await engine.completions.create({ prompt: request.prompt, ...options });
      [text, usage] = [reply.choices[0].text, reply.usage];
    }
    results.push({ ...current, promptTokens: usage.prompt_tokens, text });
  }
  await engine.unload();
  return results;
}
