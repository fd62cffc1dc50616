// Modal dialogs for confirmations and one-line answers (native <dialog>, showModal).
//
// Theory of operation
// -------------------
// showModal() gives the WAI-ARIA dialog pattern for free: the rest of the page is
// inert, Escape cancels, focus stays inside.  Each call builds a fresh dialog, resolves
// its promise once with the answer, and removes the dialog; the focus goes back to
// the element that had it.

import { h, uid } from "./dom.js";

function open(build) {
  return new Promise((resolve) => {
    const before = document.activeElement;
    const titleId = uid("dialog-title");
    let answer = null;
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId });
    const finish = (value) => {
      answer = value;
      dialog.close();
    };
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (before instanceof HTMLElement && before.isConnected) before.focus();
      resolve(answer);
    });
    build(dialog, titleId, finish);
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * Ask a yes/no question.
 * @param {{title: string, message: string, confirm: string, cancel?: string}} spec
 * @returns {Promise<boolean>}
 */
export function confirmDialog({ title, message, confirm, cancel = "Cancel" }) {
  return open((dialog, titleId, finish) => {
    const no = h("button", { type: "button", text: cancel, onclick: () => finish(false) });
    const yes = h("button", { type: "button", class: "danger", text: confirm, onclick: () => finish(true) });
    dialog.append(
      h("h2", { id: titleId, text: title }),
      h("p", { text: message }),
      h("div", { class: "actions" }, yes, no),
    );
    queueMicrotask(() => no.focus());
  }).then((answer) => answer === true);
}

/**
 * Ask for one line of text.
 * @param {{title: string, label: string, value?: string, maxlength?: number,
 *          confirm: string, validate?: (text: string) => string}} spec
 *   validate returns an error text ("" when the value is acceptable)
 * @returns {Promise<string | null>} null when cancelled
 */
export function promptDialog({ title, label, value = "", maxlength = 100, confirm, validate }) {
  return open((dialog, titleId, finish) => {
    const inputId = uid("prompt");
    const errorId = uid("prompt-error");
    const error = h("p", { id: errorId, class: "message error", role: "alert", hidden: true });
    const input = h("input", {
      id: inputId,
      type: "text",
      value,
      maxlength: String(maxlength),
      required: true,
      "aria-describedby": errorId,
    });
    const form = h(
      "form",
      { method: "dialog", novalidate: true },
      h("h2", { id: titleId, text: title }),
      h("div", { class: "field" }, h("label", { for: inputId, text: label }), input),
      error,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary", text: confirm }),
        h("button", { type: "button", text: "Cancel", onclick: () => finish(null) }),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const answer = input.value.trim();
      const problem = validate ? validate(answer) : answer ? "" : "Enter a value.";
      if (problem) {
        error.textContent = problem;
        error.hidden = false;
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      finish(answer);
    });
    dialog.append(form);
    queueMicrotask(() => input.select());
  });
}
