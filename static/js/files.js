/** Files the person saves from the page. */

/** Offer text as a download named `name`. */
export function downloadFile(name, text, type) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  link.click();
  // The download has its own copy of the data once started; the URL only needs to outlive the click.
  setTimeout(() => URL.revokeObjectURL(link.href), 0);
}
