/**
 * Which of a hosted model's libraries this browser's GPU gets. Hearth compiles a model twice
 * (webapp/compile/schedule_sets.py): "gpu", scheduled the way mlc-llm schedules for real GPUs
 * (workgroup tiles, barriers), and "fallback", barrier-free kernels for software adapters such as
 * SwiftShader, whose workgroup invocations are fibers that every barrier switches. The fallback
 * library runs anywhere; the GPU one is only worth it on hardware.
 */

import { adapterName } from "./gpu.js";

// Software rasterisers that offer WebGPU: Chromium's SwiftShader, Mesa's llvmpipe / lavapipe /
// softpipe, Windows' WARP ("Microsoft Basic Render Driver").
const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|basic render driver|\bwarp\b/i;

/** True when the probed GPU (gpu.js probeGpu) is a fallback or software adapter, or there is none. */
export function isSoftwareAdapter(gpu) {
  const adapter = gpu?.adapter;
  if (!adapter) return true;
  if (adapter.isFallbackAdapter) return true;
  return SOFTWARE_ADAPTER.test([adapter.vendor, adapter.architecture, adapter.description].join(" "));
}

/**
 * Pick from index.json's libraries ({fallback: {url, integrity, bytes}, gpu?: {...}}) for a probed GPU.
 * Returns {schedule, url, integrity, bytes, reason}; reason says in words what was chosen and why.
 */
export function chooseLibrary(libraries, gpu) {
  const name = adapterName(gpu ?? { adapter: null });
  if (!libraries.gpu) {
    return { schedule: "fallback", ...libraries.fallback, reason: "one library for every GPU (the model has no GPU-tuned one)" };
  }
  if (isSoftwareAdapter(gpu)) {
    return { schedule: "fallback", ...libraries.fallback, reason: `barrier-free kernels, for the software adapter (${name})` };
  }
  return { schedule: "gpu", ...libraries.gpu, reason: `GPU-tuned kernels, for ${name}` };
}
