/**
 * A reply on screen, finished or streaming. Streaming re-renders only the blocks that changed (as a
 * reply grows, that is its last block), at most once an animation frame, through the same sanitiser
 * and highlighter as renderMarkdown; finish() leaves exactly what renderReply() would.
 *
 * Use: renderReply(body, text) for a finished reply; for one that streams,
 *   const view = createReplyRenderer(body);   // body is emptied, and owned by the renderer from now on
 *   onText: (text) => view.update(text)         // the whole reply so far, as often as tokens come
 *   done:   view.finish(text)                   // renders now (also after Stop or an error)
 */

import { prepareLanguages } from "./code-highlight.js";
import { markdownBlocks, renderBlock, renderMarkdown } from "./markdown.js";
import { addReplyTools } from "./reply-tools.js";

// How many of the last non-blank blocks a frame lexes again: text that arrives can still change the
// block before the one it lands in (a setext underline, a list's next item after a blank line).
const UNSETTLED_BLOCKS = 2;
// A reference-style link definition changes blocks anywhere before it: such replies are lexed whole.
const LINK_DEFINITION = /^ {0,3}\[[^\]\n]+\]:/m;
const NO_LINKS = "{}";
// marked reads \r\n and \r as \n; the renderer does the same first, so block sources add up to the text.
const LINE_BREAK = /\r\n?/g;

/** Render a finished reply into target: its sanitised markdown, code highlighted, with the reply tools. */
export function renderReply(target, text) {
  renderMarkdown(target, text);
  addReplyTools(target);
}

/** A renderer that owns target: update(text) renders by the next frame, finish(text) renders now. */
export function createReplyRenderer(target) {
  prepareLanguages();
  target.replaceChildren();
  // What target holds, block by block: each block's source, type and the nodes it became.
  let shown = [];
  let shownText = "";
  // Link definitions change how other blocks render, so a change to them redoes every block.
  let shownLinks = NO_LINKS;
  let latest = "";
  let frame = 0;

  function render(rawText, whole) {
    const text = rawText.replace(LINE_BREAK, "\n");
    const lexWhole = whole || shownLinks !== NO_LINKS || LINK_DEFINITION.test(text);
    const from = lexWhole ? 0 : settledBlocks(shown);
    const offset = shown.slice(0, from).reduce((length, block) => length + block.raw.length, 0);
    const start = text.slice(0, offset) === shownText.slice(0, offset) ? from : 0;
    const tokens = markdownBlocks(start === 0 ? text : text.slice(offset));
    const links = JSON.stringify(tokens.links);
    let kept = start;
    if (links === shownLinks) {
      while (kept < shown.length && kept - start < tokens.length && sameBlock(shown[kept], tokens[kept - start])) {
        kept += 1;
      }
    } else kept = 0;
    for (const block of shown.slice(kept)) for (const node of block.nodes) node.remove();
    const fresh = tokens.slice(kept - start).map(renderWithTools);
    target.append(...fresh.map((block) => block.fragment));
    shown = [...shown.slice(0, kept), ...fresh.map(({ raw, type, nodes }) => ({ raw, type, nodes }))];
    shownText = text;
    shownLinks = links;
  }

  return {
    /** The whole text so far; rendered once on the next animation frame, however often this is called. */
    update(text) {
      latest = text;
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        render(latest, false);
      });
    },
    /** Render text now, whole, and drop any frame still pending: the reply's final (or stopped) text. */
    finish(text) {
      cancelAnimationFrame(frame);
      frame = 0;
      render(text, true);
    },
  };
}

// The number of leading blocks a new frame keeps without lexing them again.
function settledBlocks(shown) {
  let unsettled = 0;
  for (let index = shown.length - 1; index >= 0; index -= 1) {
    if (shown[index].type !== "space") unsettled += 1;
    if (unsettled === UNSETTLED_BLOCKS) return index;
  }
  return 0;
}

function sameBlock(block, token) {
  return block.raw === token.raw && block.type === token.type;
}

function renderWithTools(token) {
  const fragment = renderBlock(token);
  addReplyTools(fragment);
  return { raw: token.raw, type: token.type, nodes: [...fragment.childNodes], fragment };
}
