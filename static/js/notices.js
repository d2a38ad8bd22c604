/** Page-wide notices: things people should know that belong to no single panel. */

/** Show a notice until it is dismissed; kind is "info" or "warning". */
export function showNotice(text, kind = "info") {
  const notice = document.createElement("p");
  notice.className = `notice notice-${kind}`;
  const message = document.createElement("span");
  message.textContent = text;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "link-button";
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => notice.remove());
  notice.append(message, " ", dismiss);
  document.getElementById("notices").append(notice);
}
