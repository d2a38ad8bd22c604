/**
 * Registering a provider's origin with this server, so the network worker's policy lets it through
 * (webapp/connect_origins.py), then starting a fresh worker that carries the new policy.
 */

import { net, pageToken } from "./net.js";

const ORIGINS_URL = "/api/connect-origins";
let known = null;

/** The origins this server lets the worker reach. */
export async function registeredOrigins() {
  if (known) return known;
  const response = await fetch(ORIGINS_URL, { cache: "no-store" });
  known = new Set(response.ok ? (await response.json()).origins : []);
  return known;
}

/** Make sure the worker may call this provider directly; throws with the server's reason if it refuses. */
export async function allowDirectCalls(provider) {
  if (provider.via === "relay" || provider.source === "server") return;
  const origin = new URL(provider.baseUrl).origin;
  if ((await registeredOrigins()).has(origin)) return;
  const response = await fetch(ORIGINS_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Hearth-Token": pageToken() },
    body: JSON.stringify({ origin }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`This server would not let the page call ${origin}: ${answer.error?.message ?? response.status}`);
  }
  known = new Set(answer.origins);
  net.restart();
}
