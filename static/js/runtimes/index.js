/**
 * The runtimes a catalogue entry can name (entry.runtime). Adding one is a
 * module with the same interface (load, reply, stop, unload; countTokens where it can) and a row here.
 */

import { RemoteRuntime } from "./remote.js";
import { WebLLMRuntime } from "./webllm.js";

export const RUNTIMES = {
  webllm: WebLLMRuntime,
  remote: RemoteRuntime,
};

/** Whether an entry's runtime runs on this machine's GPU (so the GPU check applies to it). */
export function runsInBrowser(entry) {
  return Boolean(RUNTIMES[entry.runtime]?.inBrowser);
}

/** A new runtime instance for an entry; throws for a runtime this page does not have. */
export function createRuntime(entry) {
  const Runtime = RUNTIMES[entry.runtime];
  if (!Runtime) throw new Error(`UnknownRuntimeError: no runtime called ${entry.runtime}`);
  return new Runtime();
}
