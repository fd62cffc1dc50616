// Building the DOM without markup strings.
//
// Theory of operation
// -------------------
// Every element of the client is made here, with createElement and textContent:
// no module ever assigns innerHTML, so no text that came from a server, a brand or
// a user can become markup or script.  h(tag, props, ...children) makes one element:
//
// * props: "class", "text" (textContent), "for" (htmlFor), "hidden", "disabled",
//   "checked", "value" as properties; "on<event>" as listeners; "dataset" as an
//   object; everything else, aria-* and role included, as attributes (null and false
//   leave an attribute out);
// * children: elements, strings (text nodes), arrays of them; null is skipped.
//
// uid(prefix) gives ids for label/for and aria-describedby pairs.

let counter = 0;

/** A new id, unique in this page: ``prefix-1``, ``prefix-2``, ... */
export function uid(prefix = "id") {
  counter += 1;
  return `${prefix}-${counter}`;
}

const PROPERTIES = new Set(["hidden", "disabled", "checked", "value", "selected", "multiple", "required"]);

/**
 * Make an element.
 * @param {string} tag
 * @param {Record<string, any> | null} [props]
 * @param {...(Node | string | null | undefined | Array<any>)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = null, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = String(value);
    else if (name === "for") el.htmlFor = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (PROPERTIES.has(name)) el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Append children (elements, strings, arrays; null skipped) to *el*. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

/** Remove every child of *el*; then append *children*. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Say *text* through the page's polite live region (screen readers read it). */
export function announce(text) {
  const live = document.getElementById("live");
  if (!live) return;
  live.textContent = "";
  // a new text node after a tick, so that the same text twice is read twice
  setTimeout(() => {
    live.textContent = text;
  }, 30);
}
