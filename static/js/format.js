/** Numbers as people read them: sizes and speeds. */

// The SI symbols, as Jinja's filesizeformat writes them on the server-rendered pages.
const UNITS = ["bytes", "kB", "MB", "GB", "TB"];

/** 1536000 → "1.5 MB" (decimal units, as download sizes are usually quoted). */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "size unknown";
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** 12.345 → "12.3 tokens/s". */
export function formatRate(tokensPerSecond) {
  return Number.isFinite(tokensPerSecond) ? `${tokensPerSecond.toFixed(1)} tokens/s` : "–";
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A time as people say it: "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", or the date. */
export function relativeTime(time, now = Date.now()) {
  const age = now - time;
  if (age < MINUTE) return "just now";
  if (age < HOUR) return `${Math.floor(age / MINUTE)} min ago`;
  if (age < DAY) return `${Math.floor(age / HOUR)} h ago`;
  if (age < 2 * DAY) return "yesterday";
  if (age < 7 * DAY) return `${Math.floor(age / DAY)} days ago`;
  return new Date(time).toLocaleDateString();
}

/** A price in dollars: "$0.0042", "$1.23". */
export function formatCost(dollars) {
  if (!Number.isFinite(dollars)) return "";
  return `$${dollars >= 1 ? dollars.toFixed(2) : dollars.toPrecision(2)}`;
}
