/**
 * Syntax highlighting of sanitised code blocks. highlight.js returns HTML, so its output goes through a
 * DOMPurify of its own that lets through nothing but <span> with highlight.js's classes.
 */

import hljs from "/static/vendor/highlight/highlight.min.js";
import createDOMPurify from "/static/vendor/purify.es.mjs";

// Past this size a block stays plain: highlighting it would hold the page up for too long.
export const MAX_HIGHLIGHT_CHARS = 20_000;
// A block without a language is guessed from its start: guessing tries every language on the text.
const GUESS_SAMPLE_CHARS = 1_000;
// Shorter than this, a block gives too little to guess from (and guessing it would still cost).
const MIN_GUESS_CHARS = 20;
// A guess must be at least this sure (highlight.js's relevance score) or the block stays plain text.
const MIN_GUESS_RELEVANCE = 5;
const LANGUAGE_CLASS = /^language-([\w+-]{1,40})$/;
// highlight.js names a scope "hljs-<scope>" and marks sub-scopes with trailing underscores ("function_").
const HIGHLIGHT_CLASS = /^(?:hljs-[a-z][\w-]*|[a-z]+_+)$/;

let preparing = false; // prepareLanguages() has started
let lastGuess = { sample: null, language: null };

// The first sanitiser keeps only language-* classes, so highlighting needs its own instance and rules.
const purify = createDOMPurify(window);
purify.addHook("afterSanitizeAttributes", (node) => {
  const kept = [...node.classList].filter((name) => HIGHLIGHT_CLASS.test(name));
  if (kept.length > 0) node.setAttribute("class", kept.join(" "));
  else node.removeAttribute("class");
});
const CONFIG = {
  ALLOWED_TAGS: ["span"],
  ALLOWED_ATTR: ["class"],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

/** Highlight every `pre > code` under root: by its language-* class, else by highlight.js's guess. */
export function highlightCodeBlocks(root) {
  for (const code of root.querySelectorAll("pre > code")) highlightBlock(code);
}

/**
 * Compile every language's grammar ahead of need, one per idle moment, once per page: highlight.js
 * compiles a grammar on first use, which can take tens of milliseconds, too long inside a frame.
 */
export function prepareLanguages() {
  if (preparing) return;
  preparing = true;
  const waiting = hljs.listLanguages();
  const idle = window.requestIdleCallback ?? ((callback) => setTimeout(callback, 50));
  const next = () => {
    const language = waiting.shift();
    if (!language) return;
    hljs.highlight("", { language });
    idle(next);
  };
  idle(next);
}

/** A code element's language for people ("Python"), or "" when it has none. */
export function languageName(code) {
  const language = requestedLanguage(code);
  if (!language) return "";
  return hljs.getLanguage(language)?.name ?? language;
}

function highlightBlock(code) {
  code.classList.add("hljs"); // the theme's colours and background, highlighted or not
  const text = code.textContent;
  if (text.length > MAX_HIGHLIGHT_CHARS) return;
  const requested = requestedLanguage(code);
  const result = requested ? highlightAs(text, requested) : guess(text);
  if (!result) return;
  if (!requested) code.classList.add(`language-${result.language}`);
  code.replaceChildren(purify.sanitize(result.value, CONFIG));
}

function requestedLanguage(code) {
  for (const name of code.classList) {
    const match = LANGUAGE_CLASS.exec(name);
    if (match) return match[1].toLowerCase();
  }
  return null;
}

// An unknown language is shown as plain text: getLanguage first, since highlight() throws on one.
function highlightAs(text, language) {
  if (!hljs.getLanguage(language)) return null;
  return hljs.highlight(text, { language, ignoreIllegals: true });
}

function guess(text) {
  const sample = text.slice(0, GUESS_SAMPLE_CHARS);
  if (sample.trim().length < MIN_GUESS_CHARS) return null;
  // A block that streams is guessed again each frame; once its sample stops growing, so does the guess.
  if (sample !== lastGuess.sample) {
    const { language, relevance } = hljs.highlightAuto(sample);
    lastGuess = { sample, language: relevance >= MIN_GUESS_RELEVANCE ? language : null };
  }
  const { language } = lastGuess;
  return language ? hljs.highlight(text, { language, ignoreIllegals: true }) : null;
}
