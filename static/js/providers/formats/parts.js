/** Pieces of a message every format needs: its text, and an attached image as type and base64. */

/** A message's text (content is a string in Hearth's conversations). */
export function textOf(content) {
  return typeof content === "string" ? content : String(content ?? "");
}

/** {mediaType, data} of a data: URL holding an image. */
export function imageData(dataUrl) {
  const match = /^data:([^;,]+);base64,(.*)$/s.exec(dataUrl);
  if (!match) throw new Error("ImageError: an attached image must be a data: URL with base64 contents");
  return { mediaType: match[1], data: match[2] };
}
