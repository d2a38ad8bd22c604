/** Model output as markdown: parsed by marked, then every tag and URL checked by DOMPurify. */

import { Marked } from "/static/vendor/marked.esm.js";
import createDOMPurify from "/static/vendor/purify.es.mjs";

// What markdown produces, and nothing else: no style, script, iframe, form, svg, math or media.
const ALLOWED_TAGS = [
  "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
  "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
];
const ALLOWED_ATTR = ["href", "title", "alt", "src", "class", "align", "start"];
const SAFE_LINK = /^(?:https?:|mailto:)/i;
const CODE_LANGUAGE = /^language-[\w+-]{1,40}$/;
// The page may show only its own and inline images (CSP img-src), so a remote one would be a
// blocked request at best and a tracking pixel at worst: it is shown as its alt text instead.
const INLINE_IMAGE = /^data:image\//i;

const markdown = new Marked({ gfm: true, async: false });
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
  const fragment = purify.sanitize(markdown.parse(text), CONFIG);
  for (const image of fragment.querySelectorAll("img")) {
    if (!INLINE_IMAGE.test(image.getAttribute("src") ?? "")) image.replaceWith(imageText(image));
  }
  target.replaceChildren(fragment);
}

function imageText(image) {
  const alt = image.getAttribute("alt");
  return document.createTextNode(alt ? `[image: ${alt}]` : "[image]");
}
