// The controls of the customization screens, made from the SRTD/SURD tree's controls.
//
// Theory of operation
// -------------------
// A node's control is ``<control id, field value, data location>``.  The control id's
// prefix says what kind of control it is -- TXT_ text, OPT_ one of several, CHK_ a
// yes/no, LST_ a choice from a pick list, TRE_ a choice from a hierarchy -- and the
// id itself (TXT_DESC, LST_COLUMNS, ...) what it is for, which gives its label and
// its pick list.  The field value is the current value (a template's default or what
// the user saved) or, for a fresh template, the pick list that supplies the choices
// (``PL_ACCESS``).  The data location is the ARD parameter the value is saved in.
// Nothing here is particular to one report: a template offering other nodes gets
// other screens, and an unknown control id still gets a labelled text field.
//
// createControl() returns {element, locations, write(values), target(location)}:
// write() puts the control's ARD values into the Map, target() gives the field
// that an error about a location is shown next to.  Controls that depend on each
// other (the schedule on its type, sorting and subtotals on the chosen columns)
// talk through ctx.state, a small store of the current values with watchers.

import { h, uid } from "../dom.js";
import { Group, Member } from "../protocol/metadata.js";
import { isEmpty, items, list, pickListToken, text } from "../wire.js";
import { readSchedule, scheduleValue } from "./ard.js";
import { billingKeys, billingTree, billingValue, geoKeys, geoTree, geoValue } from "./hierarchy.js";

/** Labels of the known control ids (the seed's words where it has them). */
const LABELS = {
  TXT_NAME: "Report name",
  TXT_DESC: "Report description",
  OPT_SCHEDTYPE: "Schedule type",
  TXT_SCHEDULE: "Schedule",
  OPT_RANGETYPE: "Range type",
  LST_TIMEZONE: "Time zone",
  CHK_ACTIVE: "Scheduled",
  LST_COLUMNS: "Report columns",
  LST_SORT: "Sort order",
  TXT_THRESHOLD: "Thresholds",
  OPT_TOTALMODE: "Totals",
  LST_SUBTOTCOL: "Subtotal columns",
  LST_ACCESS: "Access types",
  TRE_BILLING: "Billing hierarchy",
  TRE_GEO: "Geographic locations",
  LST_RANGE: "Distance ranges",
  LST_USAGE: "Usage",
  LST_DUR: "Duration ranges",
  TXT_CARDNO: "Calling card numbers",
  TXT_IDAC: "ID/account codes",
  TXT_NDIALED: "Numbers dialed",
  CHK_EMAIL: "Notify me by e-mail",
  TXT_MMADDR: "E-mail address",
  TXT_MMTEXT: "E-mail message",
  CHK_PAGE: "Notify me by pager",
  TXT_PGT: "Pager system",
  TXT_PGPIN: "Pager PIN",
  TXT_PGTXT: "Pager message",
};

/** Pick lists of the known control ids (a PL_ field value names its own). */
const PICK_LISTS = {
  LST_TIMEZONE: "PL_TIMEZONE",
  LST_COLUMNS: "PL_FIELDS",
  LST_FIELDS: "PL_FIELDS",
  LST_ACCESS: "PL_ACCESS",
  TRE_BILLING: "PL_HIER",
  TRE_GEO: "PL_GEO",
  LST_RANGE: "PL_RANGE",
  LST_USAGE: "PL_USAGE",
  LST_DUR: "PL_DURATION",
};

const OPTIONS = {
  OPT_SCHEDTYPE: [
    ["A", "Ad hoc: for the date ranges given"],
    ["R", "Recurring"],
  ],
  OPT_RANGETYPE: [
    ["1", "Range: from the start to the end of each date range"],
    ["0", "Discrete: the start and end dates only"],
  ],
  OPT_TOTALMODE: [
    ["0", "None"],
    ["1", "Subtotals"],
    ["2", "Report total"],
    ["3", "Subtotals and report total"],
  ],
};

const LIMITS = { TXT_NAME: 100, TXT_MMADDR: 75, TXT_MMTEXT: 500, TXT_PGT: 15, TXT_PGPIN: 8, TXT_PGTXT: 240 };
const MULTILINE = new Set(["TXT_DESC", "TXT_MMTEXT", "TXT_PGTXT"]);
const LISTS = new Set(["TXT_CARDNO", "TXT_IDAC", "TXT_NDIALED"]);
/** locations a SURD shows but an ARD does not carry (the Status node) */
export const READ_ONLY = new Set(["USERRPTID", "STATUS", "LASTUPDATE", "PRODUCT", "CATEGORY"]);

/** The label of a control. */
export function labelOf(control, node) {
  return LABELS[control.id] ?? (node.label || control.location || control.id);
}

/** The pick list a control takes its choices from, or null. */
export function pickListOf(control) {
  return pickListToken(control.value) ?? PICK_LISTS[control.id] ?? null;
}

// -- building blocks ------------------------------------------------------------------

function errorSlot() {
  return h("p", { id: uid("err"), class: "field-error", hidden: true });
}

/** An error shown next to *field* (aria-invalid and aria-describedby on it). */
function showError(field, slot, message) {
  slot.textContent = message;
  slot.hidden = !message;
  if (!field) return;
  const described = (field.getAttribute("aria-describedby") ?? "").split(" ").filter((x) => x && x !== slot.id);
  if (message) {
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", [...described, slot.id].join(" "));
  } else {
    field.removeAttribute("aria-invalid");
    if (described.length) field.setAttribute("aria-describedby", described.join(" "));
    else field.removeAttribute("aria-describedby");
  }
}

function simple(element, location, field, slot, write) {
  return {
    element,
    locations: [location],
    write,
    target: () => ({ focus: field, show: (message) => showError(field, slot, message) }),
  };
}

function fieldset(legend, ...children) {
  return h("fieldset", { class: "group" }, h("legend", { text: legend }), ...children);
}

function radios(name, options, current, onchange) {
  return options.map(([value, label]) => {
    const id = uid(name);
    return h(
      "div",
      { class: "choice" },
      h("input", { id, type: "radio", name, value, checked: value === current, onchange }),
      h("label", { for: id, text: label }),
    );
  });
}

function checkboxes(name, choices, chosen, onchange) {
  return choices.map(([value, label]) => {
    const id = uid(name);
    return h(
      "div",
      { class: "choice" },
      h("input", { id, type: "checkbox", name, value, checked: chosen.has(value), onchange }),
      h("label", { for: id, text: label }),
    );
  });
}

function loading(text = "Loading choices…") {
  return h("p", { class: "loading", role: "status", text });
}

async function choicesOf(ctx, control) {
  const kind = pickListOf(control);
  if (!kind) return [];
  const answer = await ctx.pickList(kind);
  if (answer.error) throw new Error(`pick list ${kind} refused (${answer.error})`);
  return answer.rows;
}

// -- the controls -----------------------------------------------------------------------

function textControl(control, node, ctx) {
  const id = uid(control.id.toLowerCase());
  const slot = errorSlot();
  const label = labelOf(control, node);
  const multiline = MULTILINE.has(control.id);
  const isList = LISTS.has(control.id);
  const initial = isList ? items(control.value).join("\n") : text(control.value);
  const attrs = { id, name: control.location, value: initial };
  if (LIMITS[control.id]) attrs.maxlength = String(LIMITS[control.id]);
  if (control.id === "TXT_MMADDR") {
    attrs.type = "email";
    attrs.autocomplete = "email";
  } else if (control.id === "TXT_PGPIN") {
    attrs.inputmode = "numeric";
  }
  let hint = null;
  if (isList) {
    hint = h("p", { id: uid("hint"), class: "hint", text: "One per line (or separated by commas); * matches any digits." });
    attrs["aria-describedby"] = hint.id;
  }
  const field = multiline || isList ? h("textarea", { ...attrs, rows: isList ? "3" : "4" }) : h("input", { type: "text", ...attrs });
  if (multiline || isList) field.value = initial;
  if (control.id === "TXT_NAME") field.required = true;
  const element = h("div", { class: "field" }, h("label", { for: id, text: label }), hint, field, slot);
  return simple(element, control.location, field, slot, (values) => {
    const raw = field.value;
    if (isList) values.set(control.location, list(raw.split(/[\n,]+/).map((x) => x.trim())));
    else values.set(control.location, multiline ? raw.trim() : raw.trim());
  });
}

function optionControl(control, node, ctx) {
  const name = uid(control.location.toLowerCase());
  const slot = errorSlot();
  const current = text(control.value) || (OPTIONS[control.id]?.[0]?.[0] ?? "");
  const options = OPTIONS[control.id] ?? [[current, current]];
  ctx.state.set(control.location, current);
  const group = fieldset(
    labelOf(control, node),
    radios(name, options, current, (event) => ctx.state.set(control.location, event.target.value)),
    slot,
  );
  const first = () => group.querySelector("input:checked") ?? group.querySelector("input");
  if (control.id === "OPT_RANGETYPE") {
    const sync = () => {
      const adhoc = ctx.state.get("SCHEDTYPE") !== "R";
      for (const input of group.querySelectorAll("input")) input.disabled = !adhoc;
    };
    ctx.state.watch("SCHEDTYPE", sync);
    sync();
  }
  return {
    element: group,
    locations: [control.location],
    write: (values) => {
      const checked = group.querySelector("input:checked");
      if (control.id === "OPT_RANGETYPE" && ctx.state.get("SCHEDTYPE") === "R") return;
      if (checked) values.set(control.location, checked.value);
    },
    target: () => ({ focus: first(), show: (message) => showError(first(), slot, message) }),
  };
}

function checkControl(control, node) {
  const id = uid(control.id.toLowerCase());
  const slot = errorSlot();
  const field = h("input", { id, type: "checkbox", checked: text(control.value) === "1" });
  const element = h("div", { class: "choice" }, field, h("label", { for: id, text: labelOf(control, node) }), slot);
  return simple(element, control.location, field, slot, (values) => {
    values.set(control.location, field.checked ? "1" : "0");
  });
}

function activeControl(control) {
  const scheduled = text(control.value) === "1";
  const element = h(
    "p",
    { class: "hint" },
    scheduled
      ? "This report is scheduled. Save and Exit keeps it saved only; Save and Run schedules it again."
      : "Save and Exit saves the report only; Save and Run also schedules it to run.",
  );
  return { element, locations: [], write: () => {}, target: () => null };
}

const READ_ONLY_LABELS = {
  USERRPTID: "Report ID",
  PRODUCT: "Product",
  CATEGORY: "Report category",
  STATUS: "Status",
  LASTUPDATE: "Last update (GMT)",
};

/** How the Report Manager's status codes read (RM: SAVED, SCHEDULED, SUBMITTED, C, FAILED). */
const STATUS_TEXT = {
  SAVED: "Saved (not scheduled)",
  SCHEDULED: "Scheduled",
  SUBMITTED: "Submitted to the fulfilling server",
  C: "Complete: the report is in the Message Center",
  FAILED: "Failed",
};
const PRODUCT_TEXT = { V: "Vnet", C: "CVNS", S: "Vision", T: "Toll Free", H: "Broadband" };

function shown(location, value) {
  if (location === "STATUS") return STATUS_TEXT[value] ? `${STATUS_TEXT[value]} (${value})` : value;
  if (location === "PRODUCT") return PRODUCT_TEXT[value] ?? value;
  const stamp = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(value);
  if (location === "LASTUPDATE" && stamp) return `${stamp[1]}-${stamp[2]}-${stamp[3]} ${stamp[4]}:${stamp[5]}`;
  return value;
}

function readOnlyControl(control) {
  const value = text(control.value);
  const element = h(
    "div",
    { class: "readonly" },
    h("span", { class: "readonly-label", text: `${READ_ONLY_LABELS[control.location] ?? control.location}: ` }),
    h("span", { text: value ? shown(control.location, value) : "-" }),
  );
  return { element, locations: [], write: () => {}, target: () => null };
}

function timezoneControl(control, node, ctx) {
  const id = uid("timezone");
  const slot = errorSlot();
  const current = pickListToken(control.value) ? ctx.defaults.timezone : text(control.value) || ctx.defaults.timezone;
  const select = h("select", { id, name: control.location }, h("option", { value: current, text: current }));
  const element = h(
    "div",
    { class: "field" },
    h("label", { for: id, text: labelOf(control, node) }),
    select,
    h("p", { class: "hint", text: "Dates and times of the schedule are in this time zone." }),
    slot,
  );
  ctx.state.set("TIMEZONE", current);
  select.addEventListener("change", () => ctx.state.set("TIMEZONE", select.value));
  choicesOf(ctx, control)
    .then((rows) => {
      select.replaceChildren(...rows.map(([code, , description]) => h("option", { value: code, text: description, selected: code === current })));
    })
    .catch(() => {});
  return simple(element, control.location, select, slot, (values) => values.set(control.location, select.value));
}

function scheduleControl(control, node, ctx) {
  const slot = errorSlot();
  const initial = readSchedule(control.value);
  const ranges = h("ol", { class: "ranges" });
  const addRange = (start = "", end = "") => {
    const n = ranges.children.length + 1;
    const startId = uid("start");
    const endId = uid("end");
    const item = h(
      "li",
      { class: "range" },
      h("div", { class: "field" }, h("label", { for: startId, text: `Start of date range ${n}` }), h("input", { id: startId, type: "datetime-local", value: start, class: "start" })),
      h("div", { class: "field" }, h("label", { for: endId, text: `End of date range ${n}` }), h("input", { id: endId, type: "datetime-local", value: end, class: "end" })),
    );
    const remove = h("button", {
      type: "button",
      class: "quiet",
      text: "Remove",
      "aria-label": `Remove date range ${n}`,
      onclick: () => {
        item.remove();
        if (!ranges.children.length) addRange();
        ranges.querySelector("input")?.focus();
      },
    });
    item.append(remove);
    ranges.append(item);
    return item;
  };
  for (const { start, end } of initial.ranges) addRange(start, end);
  if (!ranges.children.length) addRange();
  const add = h("button", {
    type: "button",
    text: "Add date range",
    onclick: () => addRange().querySelector("input").focus(),
  });
  const adhoc = h("div", { class: "adhoc" }, h("p", { class: "hint", text: "Run once for each date range (times in the report's time zone)." }), ranges, add);

  const freqName = uid("frequency");
  const unpriced = ctx.spec.dataCat === "U";
  const frequencies = [
    ["H", unpriced ? "Hourly" : "Hourly (unpriced data only)"],
    ["D", "Daily"],
    ["W", "Weekly"],
    ["M", "Monthly"],
  ];
  const current = initial.kind && initial.kind !== "A" ? initial.kind : "D";
  const recurring = fieldset("Run every", radios(freqName, frequencies, current, () => {}));
  const hourly = recurring.querySelector('input[value="H"]');
  if (hourly && !unpriced) hourly.disabled = true;

  const element = h("div", { class: "schedule" }, adhoc, recurring, slot);
  const sync = () => {
    const isAdhoc = ctx.state.get("SCHEDTYPE") !== "R";
    adhoc.hidden = !isAdhoc;
    recurring.hidden = isAdhoc;
  };
  ctx.state.watch("SCHEDTYPE", sync);
  sync();
  const first = () => (ctx.state.get("SCHEDTYPE") === "R" ? recurring.querySelector("input:checked") : ranges.querySelector("input"));
  return {
    element,
    locations: [control.location],
    write: (values) => {
      if (ctx.state.get("SCHEDTYPE") === "R") {
        values.set(control.location, scheduleValue(recurring.querySelector("input:checked")?.value ?? "D"));
        return;
      }
      const chosen = [...ranges.querySelectorAll("li")]
        .map((li) => ({ start: li.querySelector(".start").value, end: li.querySelector(".end").value }))
        .filter((r) => r.start || r.end);
      values.set(control.location, chosen.length ? scheduleValue("A", chosen) : "");
    },
    target: () => ({ focus: first(), show: (message) => showError(first(), slot, message) }),
  };
}

function columnsControl(control, node, ctx) {
  const slot = errorSlot();
  const chosenList = h("ol", { class: "columns chosen" });
  const otherList = h("ul", { class: "columns others" });
  const status = loading();
  const element = h(
    "div",
    { class: "columns-editor" },
    status,
    h("h3", { text: "Columns in the report, in order" }),
    chosenList,
    h("h3", { text: "Other columns" }),
    otherList,
    slot,
  );
  let fields = [];
  let chosen = items(control.value);
  const nameOf = (id) => fields.find((f) => f[0] === id)?.[1] ?? id;
  const render = () => {
    chosenList.replaceChildren(
      ...chosen.map((id, index) => {
        const name = nameOf(id);
        return h(
          "li",
          { dataset: { column: id } },
          h("span", { class: "column-name", text: name }),
          h("button", { type: "button", class: "quiet", text: "Up", "aria-label": `Move ${name} up`, disabled: index === 0, onclick: () => move(index, -1, "up") }),
          h("button", { type: "button", class: "quiet", text: "Down", "aria-label": `Move ${name} down`, disabled: index === chosen.length - 1, onclick: () => move(index, 1, "down") }),
          h("button", { type: "button", class: "quiet", text: "Remove", "aria-label": `Remove ${name}`, onclick: () => remove(index) }),
        );
      }),
    );
    otherList.replaceChildren(
      ...fields
        .filter(([id]) => !chosen.includes(id))
        .map(([id, name]) => h("li", { dataset: { column: id } }, h("span", { class: "column-name", text: name }), h("button", { type: "button", class: "quiet", text: "Add", "aria-label": `Add ${name}`, onclick: () => add(id) }))),
    );
    ctx.state.set("COLUMNS", [...chosen], new Map(fields.map((f) => [f[0], f[1]])));
  };
  const refocus = (selector) => element.querySelector(selector)?.focus();
  const move = (index, by, way) => {
    const [id] = chosen.splice(index, 1);
    chosen.splice(index + by, 0, id);
    render();
    const name = nameOf(id);
    refocus(`button[aria-label="Move ${CSS.escape(name)} ${way}"]:not([disabled])`) || refocus(`li[data-column="${CSS.escape(id)}"] button`);
    ctx.announce(`${name} moved ${way}.`);
  };
  const remove = (index) => {
    const [id] = chosen.splice(index, 1);
    render();
    ctx.announce(`${nameOf(id)} removed from the report.`);
    (chosenList.querySelector("button") ?? otherList.querySelector("button"))?.focus();
  };
  const add = (id) => {
    chosen.push(id);
    render();
    ctx.announce(`${nameOf(id)} added to the report.`);
    (otherList.querySelector("button") ?? chosenList.querySelector("li:last-child button"))?.focus();
  };
  choicesOf(ctx, { ...control, value: "PL_FIELDS", id: "LST_FIELDS" })
    .then((rows) => {
      fields = rows;
      if (!chosen.length) chosen = rows.filter((r) => r[2] === "0").map((r) => r[0]);
      status.remove();
      render();
    })
    .catch((err) => {
      status.textContent = `The columns could not be loaded: ${err.message}`;
    });
  render();
  return {
    element,
    locations: [control.location],
    write: (values) => values.set(control.location, list(chosen)),
    target: () => {
      const focus = chosenList.querySelector("button") ?? otherList.querySelector("button");
      return { focus, show: (message) => showError(focus, slot, message) };
    },
  };
}

function sortControl(control, node, ctx) {
  const slot = errorSlot();
  const rowsList = h("ol", { class: "sort-keys" });
  let keys = items(control.value).map((k) => ({ column: k.replace(/[AD]$/, ""), order: k.endsWith("A") ? "A" : "D" }));
  const element = h("div", { class: "sort-editor" }, rowsList, slot);
  const addButton = h("button", { type: "button", text: "Add sort column", onclick: () => { keys.push({ column: ctx.state.get("COLUMNS")?.[0] ?? "", order: "A" }); render(); rowsList.querySelector("li:last-child select")?.focus(); } });
  element.insertBefore(addButton, slot);
  const render = () => {
    const columns = ctx.state.get("COLUMNS") ?? [];
    const names = ctx.state.extra("COLUMNS") ?? new Map();
    rowsList.replaceChildren(
      ...keys.map((key, index) => {
        const columnId = uid("sort-column");
        const orderId = uid("sort-order");
        const n = index + 1;
        const choices = columns.includes(key.column) || !key.column ? columns : [key.column, ...columns];
        const column = h(
          "select",
          { id: columnId, onchange: (event) => { key.column = event.target.value; } },
          choices.map((id) => h("option", { value: id, text: names.get(id) ?? id, selected: id === key.column })),
        );
        const order = h(
          "select",
          { id: orderId, onchange: (event) => { key.order = event.target.value; } },
          h("option", { value: "A", text: "Ascending", selected: key.order === "A" }),
          h("option", { value: "D", text: "Descending", selected: key.order === "D" }),
        );
        return h(
          "li",
          { class: "sort-key" },
          h("div", { class: "field" }, h("label", { for: columnId, text: `Sort column ${n}` }), column),
          h("div", { class: "field" }, h("label", { for: orderId, text: `Order of sort column ${n}` }), order),
          h("button", { type: "button", class: "quiet", text: "Remove", "aria-label": `Remove sort column ${n}`, onclick: () => { keys.splice(index, 1); render(); addButton.focus(); } }),
        );
      }),
    );
  };
  ctx.state.watch("COLUMNS", render);
  render();
  return {
    element: fieldset(labelOf(control, node), element),
    locations: [control.location],
    write: (values) => values.set(control.location, list(keys.filter((k) => k.column).map((k) => `${k.column}${k.order}`))),
    target: () => {
      const focus = rowsList.querySelector("select") ?? addButton;
      return { focus, show: (message) => showError(focus, slot, message) };
    },
  };
}

function subtotalControl(control, node, ctx) {
  const slot = errorSlot();
  const chosen = new Set(items(control.value));
  const box = h("div", { class: "choices" });
  const group = fieldset(labelOf(control, node), h("p", { class: "hint", text: "Used when Totals include subtotals." }), box, slot);
  const render = () => {
    const names = ctx.state.extra("COLUMNS") ?? new Map();
    const columns = ctx.state.get("COLUMNS") ?? [];
    box.replaceChildren(
      ...checkboxes(uid("subtotal"), columns.map((id) => [id, names.get(id) ?? id]), chosen, (event) => {
        if (event.target.checked) chosen.add(event.target.value);
        else chosen.delete(event.target.value);
      }),
    );
  };
  ctx.state.watch("COLUMNS", render);
  render();
  return {
    element: group,
    locations: [control.location],
    write: (values) => {
      const columns = ctx.state.get("COLUMNS") ?? [];
      values.set(control.location, list(columns.filter((id) => chosen.has(id))));
    },
    target: () => {
      const focus = box.querySelector("input") ?? group;
      return { focus, show: (message) => showError(focus, slot, message) };
    },
  };
}

function thresholdControl(control, node, ctx) {
  const slot = errorSlot();
  const current = control.value instanceof Group ? control.value : new Group([]);
  const fields = [["RECCOUNT", "Maximum rows (record count)", "4"]];
  if (ctx.spec.product === "T") {
    fields.push(["RANKING", "Call ranks to show (TVS ranking)", "3"], ["DURATION", "Call duration threshold, mmss (TVS)", "4"], ["ANI", "Items in the most frequent report (TVS ANI)", "3"]);
  }
  const inputs = fields.map(([key, label, size]) => {
    const id = uid(key.toLowerCase());
    const input = h("input", { id, type: "text", inputmode: "numeric", maxlength: size, value: text(current.get(key, "")), dataset: { key } });
    return { key, input, element: h("div", { class: "field" }, h("label", { for: id, text: label }), input) };
  });
  const group = fieldset(labelOf(control, node), inputs.map((i) => i.element), slot);
  return {
    element: group,
    locations: [control.location],
    write: (values) => {
      const members = inputs.filter((i) => i.input.value.trim()).map((i) => new Member(i.key, i.input.value.trim()));
      values.set(control.location, new Group(members));
    },
    target: () => ({ focus: inputs[0].input, show: (message) => showError(inputs[0].input, slot, message) }),
  };
}

function choiceListControl(control, node, ctx) {
  const slot = errorSlot();
  const chosen = new Set(pickListToken(control.value) ? [] : items(control.value));
  const box = h("div", { class: "choices" }, loading());
  const group = fieldset(labelOf(control, node), box, slot);
  choicesOf(ctx, control)
    .then((rows) => {
      box.replaceChildren(
        ...(rows.length
          ? checkboxes(uid(control.id.toLowerCase()), rows.map((r) => [r[0], r[1] ?? r[0]]), chosen, (event) => {
              if (event.target.checked) chosen.add(event.target.value);
              else chosen.delete(event.target.value);
            })
          : [h("p", { class: "hint", text: "Nothing to choose for this product and data type." })]),
      );
    })
    .catch((err) => {
      box.replaceChildren(h("p", { class: "message error", text: `The choices could not be loaded: ${err.message}` }));
    });
  return {
    element: group,
    locations: [control.location],
    write: (values) => values.set(control.location, list([...chosen])),
    target: () => {
      const focus = box.querySelector("input") ?? group;
      return { focus, show: (message) => showError(focus, slot, message) };
    },
  };
}

function treeControl(control, node, ctx) {
  const slot = errorSlot();
  const isGeo = control.id === "TRE_GEO" || pickListOf(control) === "PL_GEO";
  const initial = pickListToken(control.value) || isEmpty(control.value) ? [] : isGeo ? geoKeys(control.value) : billingKeys(control.value);
  const chosen = new Set(initial);
  let names = new Map();
  const box = h("div", { class: "tree" }, loading());
  const group = fieldset(labelOf(control, node), h("p", { class: "hint", text: isGeo ? "Choose countries, states or cities; none: every location." : "Choose corp ids, billing ids or service locations." }), box, slot);
  const name = uid(control.id.toLowerCase());
  const branch = (nodes) =>
    h(
      "ul",
      { class: "tree-level" },
      nodes.map((n) => {
        const id = uid(name);
        return h(
          "li",
          null,
          h("div", { class: "choice" }, h("input", { id, type: "checkbox", value: n.key, checked: chosen.has(n.key), onchange: (event) => { if (event.target.checked) chosen.add(n.key); else chosen.delete(n.key); } }), h("label", { for: id, text: n.label })),
          n.children.length ? branch(n.children) : null,
        );
      }),
    );
  choicesOf(ctx, control)
    .then((rows) => {
      let tree;
      if (isGeo) ({ tree, names } = geoTree(rows));
      else tree = billingTree(rows);
      box.replaceChildren(tree.length ? branch(tree) : h("p", { class: "hint", text: "Nothing to choose." }));
    })
    .catch((err) => {
      box.replaceChildren(h("p", { class: "message error", text: `The choices could not be loaded: ${err.message}` }));
    });
  return {
    element: group,
    locations: [control.location],
    write: (values) => {
      const keys = [...chosen];
      values.set(control.location, isGeo ? geoValue(keys, names) : billingValue(keys));
    },
    target: () => {
      const focus = box.querySelector("input") ?? group;
      return { focus, show: (message) => showError(focus, slot, message) };
    },
  };
}

/**
 * The control for one ``<control id, field value, data location>`` of a node.
 * @param {{id: string, value: any, location: string}} control
 * @param {{label: string}} node
 * @param {object} ctx state, pickList(kind), spec, defaults, announce
 * @returns {{element: HTMLElement | null, locations: string[], write: (values: Map) => void,
 *            target: (location: string) => ({focus: HTMLElement, show: (m: string) => void} | null)}}
 */
export function createControl(control, node, ctx) {
  const id = control.id;
  if (READ_ONLY.has(control.location)) return readOnlyControl(control);
  if (id === "LST_FIELDS") return { element: null, locations: [], write: () => {}, target: () => null };
  if (id === "CHK_ACTIVE") return activeControl(control);
  if (id === "TXT_SCHEDULE") return scheduleControl(control, node, ctx);
  if (id === "LST_TIMEZONE") return timezoneControl(control, node, ctx);
  if (id === "LST_COLUMNS") return columnsControl(control, node, ctx);
  if (id === "LST_SORT") return sortControl(control, node, ctx);
  if (id === "LST_SUBTOTCOL") return subtotalControl(control, node, ctx);
  if (id === "TXT_THRESHOLD") return thresholdControl(control, node, ctx);
  if (id.startsWith("TRE_")) return treeControl(control, node, ctx);
  if (id.startsWith("OPT_")) return optionControl(control, node, ctx);
  if (id.startsWith("CHK_")) return checkControl(control, node);
  if (id.startsWith("LST_") && pickListOf(control)) return choiceListControl(control, node, ctx);
  return textControl(control, node, ctx);
}
