/**
 * Images for a model marked "vision": attached with the button or pasted into the message box,
 * shown as thumbnails (data: URLs, which the page's CSP allows; nothing is fetched), sent with the
 * next message in each provider type's own format (providers/formats/).
 */

const $ = (id) => document.getElementById(id);
const MAX_IMAGES = 4;
const MAX_BYTES = 5 * 1024 * 1024;

export class Attachments {
  #images = [];
  #enabled = false;
  #onProblem;

  /** onProblem(message): an image that cannot be attached, in words. */
  constructor({ onProblem }) {
    this.#onProblem = onProblem;
    $("attach-input").addEventListener("change", (event) => {
      this.#add([...event.target.files]);
      event.target.value = "";
    });
    $("prompt").addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files ?? [])].filter((file) => file.type.startsWith("image/"));
      if (!files.length) return;
      event.preventDefault();
      this.#add(files);
    });
  }

  /** Offer attaching only for a model that takes images; others drop what was attached. */
  enable(enabled) {
    this.#enabled = enabled;
    $("attach-label").hidden = !enabled;
    if (!enabled && this.#images.length) this.take();
  }

  /** The attached images (data: URLs), cleared from the composer. */
  take() {
    const images = this.#images;
    this.#images = [];
    this.#render();
    return images;
  }

  /** Put images back (a send that failed). */
  restore(images) {
    this.#images = [...images];
    this.#render();
  }

  async #add(files) {
    if (!this.#enabled) {
      this.#onProblem("The selected model does not take images: pick one marked vision in Providers.");
      return;
    }
    for (const file of files) {
      if (this.#images.length >= MAX_IMAGES) return this.#onProblem(`At most ${MAX_IMAGES} images go with one message.`);
      if (file.size > MAX_BYTES) {
        this.#onProblem(`${file.name} is larger than ${MAX_BYTES >> 20} MB: attach a smaller image.`);
        continue;
      }
      this.#images.push(await dataUrl(file));
    }
    this.#render();
  }

  #render() {
    $("attachments").replaceChildren(...this.#images.map((url, index) => {
      const item = document.createElement("span");
      item.className = "attachment";
      const image = document.createElement("img");
      image.src = url;
      image.alt = `Attached image ${index + 1}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.setAttribute("aria-label", `Remove image ${index + 1}`);
      remove.addEventListener("click", () => {
        this.#images.splice(index, 1);
        this.#render();
      });
      item.append(image, remove);
      return item;
    }));
  }
}

function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
