/** WebLLM's load progress in words: which phase, how far, how many bytes. */

import { formatBytes } from "./format.js";

const MIB = 1024 * 1024;
// WebLLM's InitProgressReport restarts `progress` in each phase, so the phase is read from `text`.
const PHASES = [
  [/^Start to fetch params/, "Starting the download", ""],
  [/^Fetching param cache\[(\d+)\/(\d+)\]: (\d+)MB fetched(?:.*?(\d+) secs elapsed)?/, "Downloading weights", "files"],
  [/^Loading model from cache\[(\d+)\/(\d+)\]: (\d+)MB loaded/, "Loading weights from the browser cache", "files"],
  [/^Loading GPU shader modules\[(\d+)\/(\d+)\]/, "Compiling GPU shaders", "shader modules"],
  [/^Finish loading/, "Ready", ""],
];

/**
 * {phase, fraction (0..1), detail}: e.g. "Downloading weights", 0.3,
 * "12 of 40 files · 126 MB of 420 MB · 25.0 MB/s · about 12 s left" (speed and time left while downloading).
 */
export function describeProgress(report) {
  const fraction = Math.min(Math.max(report.progress ?? 0, 0), 1);
  for (const [pattern, phase, unit] of PHASES) {
    const match = pattern.exec(report.text ?? "");
    if (match) return { phase, fraction, detail: unit ? detail(match, unit, fraction) : "" };
  }
  return { phase: "Preparing", fraction, detail: report.text ?? "" };
}

// In the weight phases progress = bytes done / bytes in all, so the total follows from the two.
function detail([, done, count, mib, seconds], unit, fraction) {
  const parts = [`${done} of ${count} ${unit}`];
  if (mib !== undefined) {
    const bytes = Number(mib) * MIB;
    parts.push(fraction > 0 ? `${formatBytes(bytes)} of ${formatBytes(bytes / fraction)}` : formatBytes(bytes));
    if (seconds && bytes && fraction > 0) {
      const speed = bytes / Number(seconds);
      parts.push(`${formatBytes(speed)}/s`, timeLeft((bytes / fraction - bytes) / speed));
    }
  }
  return parts.join(" · ");
}

function timeLeft(seconds) {
  if (seconds < 60) return `about ${Math.ceil(seconds)} s left`;
  return `about ${Math.ceil(seconds / 60)} min left`;
}
