// Small form controls the viewer builds (labelled selects and checkboxes; no DOM strings).

import { h, uid } from "../dom.js";

export function option(value, text, selected) {
  return h("option", { value: String(value), text, selected: selected || null });
}

export function labelledSelect(label, options, onchange, extra = {}) {
  const id = uid("sel");
  const select = h("select", { id, onchange: (e) => onchange(e.target.value), ...extra }, options);
  return { select, field: h("div", { class: "field" }, h("label", { for: id, text: label }), select) };
}

export function checkbox(label, checked, onchange, extra = {}) {
  const id = uid("chk");
  const input = h("input", { id, type: "checkbox", checked: checked || null, onchange: (e) => onchange(e.target.checked), ...extra });
  return h("div", { class: "choice" }, input, h("label", { for: id, text: label }));
}
