/** Subresource Integrity for model files: the hashes WebLLM's ModelRecord.integrity takes, and its refusals in plain words. */

const SRI = /^sha(256|384|512)-[A-Za-z0-9+/]+={0,2}$/;
const REFUSED_URL = /Integrity verification failed for (\S+)/;

/** "sha256-<base64>" of some bytes (an ArrayBuffer or a view); bits 384 or 512 for the other SRI hashes. */
export async function sriOf(bytes, bits = 256) {
  const digest = new Uint8Array(await crypto.subtle.digest(`SHA-${bits}`, bytes));
  return `sha${bits}-${btoa(String.fromCharCode(...digest))}`;
}

/** Whether bytes match an SRI hash ("sha256-…", "sha384-…" or "sha512-…"), as WebLLM checks it. */
export async function matchesIntegrity(bytes, expected) {
  const bits = SRI.exec(expected)?.[1];
  return Boolean(bits) && expected === await sriOf(bytes, bits);
}

/** A ModelRecord.integrity block kept only when every hash in it is well formed; else null. */
export function validIntegrity(value) {
  if (!value || typeof value !== "object") return null;
  const { config, model_lib: lib, tokenizer } = value;
  const tokenizers = tokenizer && typeof tokenizer === "object" ? Object.entries(tokenizer) : [];
  const hashes = [config, lib, ...tokenizers.map(([, hash]) => hash)].filter((hash) => hash !== undefined);
  if (!hashes.length || !hashes.every((hash) => typeof hash === "string" && SRI.test(hash))) return null;
  const block = {};
  if (config) block.config = config;
  if (lib) block.model_lib = lib;
  if (tokenizers.length) block.tokenizer = Object.fromEntries(tokenizers);
  return block;
}

/** The URL of the file WebLLM's IntegrityError refused, or null for other errors. */
export function refusedUrl(detail) {
  return REFUSED_URL.exec(detail)?.[1] ?? null;
}

/** WebLLM's IntegrityError text → the plain message that names the refused file; null for other errors. */
export function integrityMessage(detail) {
  const url = refusedUrl(detail);
  if (!url) return null;
  const name = decodeURIComponent(new URL(url).pathname.split("/").pop());
  return `${name} does not match the hash recorded for it, so Hearth refused to use it: the file at ${url} `
    + "has changed since the model was checked or listed (it is damaged, or the host changed the model). "
    + "Check the model again if the change is expected, or ask the host.";
}
