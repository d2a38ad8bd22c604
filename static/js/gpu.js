/** The WebGPU capability check: what this browser's GPU offers, and what a model needs from it. */

export const SHADER_F16 = "shader-f16";
// WebLLM asks for 1 GiB storage buffers and settles for 128 MiB; below that it cannot load at all.
export const MIN_STORAGE_BUFFER_BYTES = 128 * 1024 * 1024;

/**
 * Probe the GPU without downloading anything.
 * Returns {ok, problem, adapter: {vendor, architecture, description, isFallbackAdapter}, features, maxStorageBufferBindingSize,
 * limits: {maxBufferSize, maxStorageBufferBindingSize}}.
 */
export async function probeGpu() {
  if (!globalThis.isSecureContext) {
    return unavailable("This page is not a secure context, and browsers offer WebGPU only to secure pages. "
      + "Open Hearth at http://localhost, http://127.0.0.1 or over https.");
  }
  if (!navigator.gpu) {
    return unavailable("This browser has no WebGPU. Use a recent Chrome or Edge on a desktop "
      + "(or enable WebGPU in your browser's settings).");
  }
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (error) {
    return unavailable(`The browser could not reach a GPU (${error.message}). Check that hardware acceleration is on.`);
  }
  if (!adapter) {
    return unavailable("WebGPU is present but found no usable GPU. Turn on hardware acceleration in the browser's "
      + "settings, or update the graphics driver.");
  }
  return describeAdapter(adapter);
}

function describeAdapter(adapter) {
  const info = adapter.info ?? {};
  const sbbs = adapter.limits.maxStorageBufferBindingSize;
  const gpu = {
    ok: true,
    problem: null,
    adapter: {
      vendor: info.vendor ?? "",
      architecture: info.architecture ?? "",
      description: info.description ?? "",
      // Chrome 130+ reports it in info; earlier versions on the adapter itself.
      isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
    },
    features: [...adapter.features].sort(),
    maxStorageBufferBindingSize: sbbs,
    limits: { maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: sbbs },
  };
  if (sbbs < MIN_STORAGE_BUFFER_BYTES) {
    gpu.ok = false;
    gpu.problem = `This GPU allows storage buffers of only ${mib(sbbs)} MiB; WebLLM needs at least `
      + `${mib(MIN_STORAGE_BUFFER_BYTES)} MiB, so no model can run here.`;
  }
  return gpu;
}

function unavailable(problem) {
  return { ok: false, problem, adapter: null, features: [], maxStorageBufferBindingSize: 0, limits: null };
}

/** A short name for the adapter, e.g. "google swiftshader". */
export function adapterName(gpu) {
  if (!gpu.adapter) return "no GPU";
  const { vendor, architecture, description } = gpu.adapter;
  return [vendor, architecture].filter(Boolean).join(" ") || description || "unnamed GPU";
}

/**
 * Why this GPU cannot run a model, in plain words; empty when it can.
 * needs = {features: [...], bufferBytes}.
 */
export function gpuProblems(needs, gpu) {
  if (!gpu.ok) return [gpu.problem];
  const problems = [];
  for (const feature of needs.features) {
    if (gpu.features.includes(feature)) continue;
    problems.push(feature === SHADER_F16
      ? `Needs ${SHADER_F16} (16-bit float shaders), which this GPU (${adapterName(gpu)}) does not offer.`
      : `Needs the WebGPU feature ${feature}, which this GPU (${adapterName(gpu)}) does not offer.`);
  }
  if (needs.bufferBytes && needs.bufferBytes > gpu.maxStorageBufferBindingSize) {
    problems.push(`Needs GPU buffers of ${mib(needs.bufferBytes)} MiB; this GPU allows `
      + `${mib(gpu.maxStorageBufferBindingSize)} MiB.`);
  }
  return problems;
}

function mib(bytes) {
  return Math.floor(bytes / (1024 * 1024));
}
