/**
 * Model output as markdown. Two locks: raw HTML in a reply is shown as text (bare tags such as <br>
 * excepted), and whatever HTML markdown makes is then checked, tag by tag and URL by URL, by DOMPurify.
 * Each top-level block is rendered and sanitised on its own (so a reply that streams can re-render only
 * its last block, and an unclosed bare tag cannot spill into the next block); code is then highlighted.
 */

import { Marked } from "/static/vendor/marked.esm.js";
import createDOMPurify from "/static/vendor/purify.es.mjs";
import { highlightCodeBlocks } from "./code-highlight.js";

// What markdown produces, and nothing else: no style, script, iframe, form, svg, math or media.
const ALLOWED_TAGS = [
  "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
  "kbd", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
];
const ALLOWED_ATTR = ["href", "title", "alt", "src", "class", "align", "start"];
const SAFE_LINK = /^(?:https?:|mailto:)/i;
const CODE_LANGUAGE = /^language-[\w+-]{1,40}$/;
// A tag with no attributes cannot carry a handler or a URL, so these few may stay HTML.
const BARE_TAG = /^<\/?(?:b|br|code|em|i|kbd|s|strong|sub|sup)\s*\/?>$/i;
// The page may show only its own and inline images (CSP img-src), so a remote one would be a
// blocked request at best and a tracking pixel at worst: it is shown as its alt text instead.
const INLINE_IMAGE = /^data:image\//i;
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

// Chromium reports an inline handler to the CSP as soon as it parses one, even in an inert document,
// so hostile HTML is escaped before any parser sees it; DOMPurify then guards what marked generates.
const markdown = new Marked({
  gfm: true,
  async: false,
  renderer: {
    html: ({ text }) => (BARE_TAG.test(text.trim()) ? text : escapeHtml(text)),
  },
});

const purify = createDOMPurify(window);
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.hasAttribute("class") && !CODE_LANGUAGE.test(node.getAttribute("class"))) node.removeAttribute("class");
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

const CONFIG = {
  ALLOWED_TAGS,
  ALLOWED_ATTR,
  ALLOWED_URI_REGEXP: SAFE_LINK,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

/** Render untrusted markdown into an element, replacing what it held. */
export function renderMarkdown(target, text) {
  target.replaceChildren(...markdownBlocks(text).map(renderBlock));
}

/** Markdown → marked's top-level block tokens, in order; each `raw` is the block's source. */
export function markdownBlocks(text) {
  return markdown.lexer(text);
}

/** One block token of markdownBlocks → a sanitised DocumentFragment with its code highlighted. */
export function renderBlock(token) {
  const html = markdown.parser([token]);
  // Blank lines and link definitions render as nothing: no need to start the sanitiser for them.
  if (!html) return document.createDocumentFragment();
  const fragment = sanitizeHtml(html);
  highlightCodeBlocks(fragment);
  return fragment;
}

/** Untrusted HTML → a DocumentFragment holding only the tags, attributes and URLs allowed above. */
export function sanitizeHtml(html) {
  const fragment = purify.sanitize(html, CONFIG);
  for (const image of fragment.querySelectorAll("img")) {
    if (!INLINE_IMAGE.test(image.getAttribute("src") ?? "")) image.replaceWith(imageText(image));
  }
  return fragment;
}

function imageText(image) {
  const alt = image.getAttribute("alt");
  return document.createTextNode(alt ? `[image: ${alt}]` : "[image]");
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]);
}
