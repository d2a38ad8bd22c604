/**
 * Copy buttons: a button[data-copy-target] copies the text of the element with that id and says so in
 * the role=status element beside it. Listens on document, so buttons that htmx swaps in work too.
 * Without the Clipboard API (an http:// origin other than localhost, or permission refused) it selects
 * the text instead, for the reader to copy by hand.
 */

const STATUS_CLEARS_AFTER_MS = 3000;

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element && event.target.closest("button[data-copy-target]");
  if (button) copyFrom(button);
});

async function copyFrom(button) {
  const source = document.getElementById(button.dataset.copyTarget);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent);
    say(button, "Copied");
  } catch {
    select(source);
    say(button, "Selected: press Ctrl+C (⌘C on a Mac) to copy");
  }
}

function select(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

function say(button, text) {
  const status = button.parentElement.querySelector('[role="status"]');
  if (!status) return;
  status.textContent = text;
  clearTimeout(status.clearTimer);
  status.clearTimer = setTimeout(() => { status.textContent = ""; }, STATUS_CLEARS_AFTER_MS);
}
