/** A confirmation asked in the page's own <dialog>: readable, keyboard-friendly, and it can be styled. */

const dialog = () => document.getElementById("confirm-dialog");

/** Ask a yes/no question; resolves true only when the person confirms. */
export function confirmAction(question, confirmLabel) {
  const box = dialog();
  box.querySelector("#confirm-message").textContent = question;
  box.querySelector("#confirm-ok").textContent = confirmLabel;
  box.returnValue = "";
  box.showModal();
  return new Promise((resolve) => {
    box.addEventListener("close", () => resolve(box.returnValue === "confirm"), { once: true });
  });
}
