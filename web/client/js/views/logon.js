// The logon page: "User ID" and "Password", and why a previous session ended.
//
// Theory of operation
// -------------------
// renderLogon() builds the form into its container and returns a small handle; the
// backplane decides what happens (logon, or logon again after a session ended with
// the open applications kept).  Messages are plain text: a refused logon goes in an
// alert next to the form, why a session ended in a status above it.  The server
// answers a wrong user id, a wrong password and a disabled user alike (so that
// nobody can find out which user ids exist), so the message names all three.

import { h, replaceChildren, uid } from "../dom.js";

const MESSAGES = {
  invalid:
    "The user ID or password is not correct, or the user is disabled. " +
    "Check both and try again; if your user has been disabled, ask your administrator.",
  unavailable: "Logon is not possible right now: order entry is not available. Try again in a minute.",
  rejected: "The server refused the logon request.",
  network: "The server cannot be reached. Check your connection and try again.",
};

/** What a refused logon says to the user. */
export function logonMessage(kind, retryAfter = 0) {
  if (kind === "throttled") {
    const wait = retryAfter > 0 ? ` Wait ${retryAfter} seconds before the next try.` : "";
    return `Too many failed logons for this user ID from this address.${wait}`;
  }
  return MESSAGES[kind] ?? MESSAGES.rejected;
}

/**
 * Build the logon page into *container*.
 * @param {HTMLElement} container
 * @param {{onSubmit: (user: string, password: string) => void, reason?: string,
 *          user?: string, keepNote?: string}} options
 */
export function renderLogon(container, { onSubmit, reason = "", user = "", keepNote = "" }) {
  const userId = uid("user");
  const passwordId = uid("password");
  const errorId = uid("logon-error");
  const error = h("p", { id: errorId, class: "message error", role: "alert", hidden: true });
  const userInput = h("input", {
    id: userId,
    name: "user",
    type: "text",
    autocomplete: "username",
    autocapitalize: "none",
    spellcheck: "false",
    maxlength: "128",
    required: true,
    value: user,
  });
  const passwordInput = h("input", {
    id: passwordId,
    name: "password",
    type: "password",
    autocomplete: "current-password",
    maxlength: "1024",
    required: true,
  });
  const button = h("button", { type: "submit", class: "primary", text: "Log on" });
  const form = h(
    "form",
    { class: "logon-form", novalidate: true, "aria-describedby": errorId },
    h("div", { class: "field" }, h("label", { for: userId, text: "User ID" }), userInput),
    h("div", { class: "field" }, h("label", { for: passwordId, text: "Password" }), passwordInput),
    error,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const who = userInput.value.trim();
    if (!who || !passwordInput.value) {
      show(who ? "Enter your password." : "Enter your user ID.");
      (who ? passwordInput : userInput).focus();
      return;
    }
    onSubmit(who, passwordInput.value);
  });

  function show(text) {
    error.textContent = text;
    error.hidden = !text;
    userInput.setAttribute("aria-invalid", text ? "true" : "false");
    passwordInput.setAttribute("aria-invalid", text ? "true" : "false");
  }

  const headingId = uid("logon-heading");
  replaceChildren(
    container,
    h(
      "section",
      { class: "logon card", "aria-labelledby": headingId },
      h("h1", { id: headingId, tabindex: "-1", text: "Log on" }),
      reason ? h("p", { class: "message notice", role: "status", text: reason }) : null,
      keepNote ? h("p", { class: "message hint", text: keepNote }) : null,
      form,
    ),
  );

  return {
    /** Show why the logon was refused, and put the focus back in the form. */
    refuse(kind, retryAfter = 0) {
      passwordInput.value = "";
      show(logonMessage(kind, retryAfter));
      passwordInput.focus();
      button.disabled = false;
    },
    busy(on) {
      button.disabled = on;
      form.setAttribute("aria-busy", on ? "true" : "false");
    },
    focus() {
      (userInput.value ? passwordInput : userInput).focus();
    },
  };
}
