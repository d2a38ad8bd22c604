// Load a model with the unmodified WebLLM engine and decode greedily, recording what it samples.
// Evaluated by Playwright as one async function; WebLLM comes from the page's own origin.
async ({ origin, modelId, prompts, maxTokens }) => {
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
        model: `${origin}/models/${modelId}/resolve/main/`,
        model_id: modelId,
        model_lib: `${origin}/libs/${modelId}.wasm`,
      },
    ],
  };
  const engine = new webllm.MLCEngine({ appConfig, logitProcessorRegistry: new Map([[modelId, recorder]]) });
  await engine.reload(modelId);
  const results = [];
  for (const prompt of prompts) {
    current = { tokens: [], logits: [] };
    const reply = await engine.completions.create({
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      // Plain greedy decoding: no penalty, whatever mlc-chat-config.json's defaults say.
      repetition_penalty: 1.0,
      frequency_penalty: 0,
      presence_penalty: 0,
      ignore_eos: true,
    });
    results.push({ ...current, promptTokens: reply.usage.prompt_tokens, text: reply.choices[0].text });
  }
  await engine.unload();
  return results;
}
