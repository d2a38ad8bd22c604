/** The Models view's "Selected model" facts: id, source, quantization, size, what it needs, why it can't run. */

import { formatBytes } from "./format.js";

const SOURCE_LABELS = { hosted: "Hosted by this server", custom: "Your custom model", prebuilt: "WebLLM prebuilt" };

/** Show an entry's facts in #model-details (nothing when entry is null). */
export function renderModelDetails(entry, defaults = null) {
  const box = document.getElementById("model-details");
  if (!entry) {
    box.replaceChildren();
    return;
  }
  const facts = document.createElement("dl");
  facts.className = "facts";
  addFact(facts, "Name", entry.name);
  addFact(facts, "Model ID", entry.id, "code");
  addFact(facts, "Source", SOURCE_LABELS[entry.source]);
  if (entry.quantization) addFact(facts, "Quantization", entry.quantization);
  addFact(facts, "Size", entry.size ? `${formatBytes(entry.size.bytes)} (${entry.size.kind})` : "unknown");
  addFact(facts, "Needs", entry.needs.features.length ? entry.needs.features.join(", ") : "no special GPU features");
  if (entry.library?.reason) addFact(facts, "Library", entry.library.reason);
  if (defaults?.context_window_size) addFact(facts, "Context window", `${defaults.context_window_size} tokens`);
  if (entry.problems.length) addFact(facts, "On this GPU", entry.problems.join(" "));
  const parts = [facts];
  if (entry.description) {
    const p = document.createElement("p");
    p.className = "description";
    p.textContent = entry.description;
    parts.push(p);
  }
  box.replaceChildren(...parts);
}

function addFact(list, term, value, tag = "span") {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  const text = document.createElement(tag);
  text.textContent = value;
  dd.append(text);
  list.append(dt, dd);
}
