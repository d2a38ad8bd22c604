/** The "Your GPU" panel: the capability check's answer, before anything is downloaded. */

import { SHADER_F16, adapterName } from "./gpu.js";

/** Show what the GPU offers, or why there is no usable one. */
export function renderGpuStatus(gpu) {
  const panel = document.getElementById("gpu-status");
  const summary = document.getElementById("gpu-summary");
  panel.dataset.state = gpu.ok ? "ok" : "unavailable";
  if (!gpu.adapter) {
    summary.textContent = gpu.problem;
    return;
  }
  const f16 = gpu.features.includes(SHADER_F16)
    ? `${SHADER_F16} available: f16 and f32 models can run.`
    : `No ${SHADER_F16}: f16 models (q4f16, q0f16) cannot run here; pick their q4f32 / q0f32 variants.`;
  summary.textContent = `WebGPU adapter: ${adapterName(gpu)}. ${f16}`;
  if (gpu.problem) summary.textContent += ` ${gpu.problem}`;
  renderFacts(gpu);
}

function renderFacts(gpu) {
  const list = document.getElementById("gpu-features");
  const facts = [
    `Largest storage buffer: ${Math.floor(gpu.maxStorageBufferBindingSize / (1024 * 1024))} MiB`,
    ...gpu.features.map((feature) => `Feature: ${feature}`),
  ];
  list.replaceChildren(...facts.map((fact) => {
    const item = document.createElement("li");
    item.textContent = fact;
    return item;
  }));
  document.getElementById("gpu-details").hidden = false;
}
