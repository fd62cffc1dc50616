// The customization screens of one report, built from its SRTD / SURD node tree.
//
// Theory of operation
// -------------------
// Seed 001: "The parser organizes the data into a series of nodes which are utilized
// to create the report builder tree on the report requestor customization screen.
// Later this data will be extracted from the node and used to construct the screen
// related to the node."  So: one tab per node, in the tree's order (level-2 nodes
// indented under their level-1 node), one panel per tab holding the node's controls
// (controls.js); a vertical WAI-ARIA tab list (arrow keys, Home, End).  Every panel
// stays in the page while the builder is open, so switching screens loses nothing.
//
// Saving (seed: "a save and exit report option, or a save and run report option"):
// every control writes its ARD values, ard.js builds the ARD -- ACTIVE=0 for Save and
// Exit, ACTIVE=1 for Save and Run -- and the Report Manager answers ARDA.  An edited
// report is saved the same way (Appendix A has no message that changes a definition
// in place) and its previous definition is deleted with DRD once the new one is
// stored.  An error answer is shown next to the field it concerns (ard.fieldOf) with
// the meaning of its Appendix E code, on that field's screen; a code that concerns
// the report as a whole is shown above the screens.  A session that ends meanwhile
// is the backplane's business: the builder stays as it is until the user has logged
// on again, and the save goes on.

import { announce, h, uid } from "../dom.js";
import { codeMeaning } from "../protocol/errors.js";
import { Member, Message } from "../protocol/metadata.js";
import { errorOf, text } from "../wire.js";
import { buildArd, fieldOf } from "./ard.js";
import { createControl } from "./controls.js";

const PRODUCTS = { V: "Vnet", C: "CVNS", S: "Vision", T: "Toll Free", H: "Broadband" };
const CATEGORIES = { P: "Priced", U: "Unpriced" };

/** A small store of values the controls share, with watchers. */
function createState() {
  const values = new Map();
  const extras = new Map();
  const watchers = new Map();
  return {
    get: (key) => values.get(key),
    extra: (key) => extras.get(key),
    set(key, value, extra) {
      values.set(key, value);
      if (extra !== undefined) extras.set(key, extra);
      for (const fn of watchers.get(key) ?? []) fn(value);
    },
    watch(key, fn) {
      if (!watchers.has(key)) watchers.set(key, []);
      watchers.get(key).push(fn);
    },
  };
}

/** What an error code means, for the user: ``meaning (code)``. */
export function describeCode(code) {
  const meaning = codeMeaning(code) ?? "refused";
  return `${meaning.charAt(0).toUpperCase()}${meaning.slice(1)} (${code})`;
}

/**
 * Open the builder for one report in *container*.
 * @param {HTMLElement} container
 * @param {{mode: "new" | "edit", templateId: string, title: string, direction: string,
 *          product: string, dataCat: string, category: string, reportId?: string,
 *          reportName?: string, nodes: any[]}} spec
 * @param {object} services the backplane's services
 * @param {{timezone: string, lang: string, curr: string}} defaults
 * @param {(result: {message: string, answer?: string} | null) => void} done
 */
export function openBuilder(container, spec, services, defaults, done) {
  const state = createState();
  const ctx = {
    spec,
    state,
    defaults,
    announce,
    pickList: (kind) => services.pickList(pickListRequest(kind, spec)),
  };
  const headingId = uid("builder-heading");
  const heading =
    spec.mode === "edit"
      ? `Edit report: ${spec.reportName} (report ${spec.reportId})`
      : `New report: ${spec.title}${spec.direction ? ` (${spec.direction})` : ""}`;
  const formError = h("div", { class: "message error", role: "alert", tabindex: "-1", hidden: true });
  const result = h("p", { class: "message", role: "status" });
  const tablist = h("div", { role: "tablist", "aria-orientation": "vertical", "aria-label": "Customization screens", class: "tabs" });
  const panels = h("div", { class: "panels" });
  const tabs = [];
  const owners = new Map(); // ARD location -> {control, index}
  const controls = [];

  spec.nodes.forEach((node, index) => {
    const tabId = uid("tab");
    const panelId = uid("panel");
    const tab = h("button", {
      type: "button",
      role: "tab",
      id: tabId,
      class: node.level > 1 ? "tab sub" : "tab",
      "aria-controls": panelId,
      "aria-selected": index === 0 ? "true" : "false",
      tabindex: index === 0 ? "0" : "-1",
      dataset: { screen: node.screen },
      text: node.label,
      onclick: () => select(index, true),
      onkeydown: (event) => keys(event, index),
    });
    const body = [];
    for (const control of node.controls) {
      const made = createControl(control, node, ctx);
      controls.push(made);
      if (made.element) body.push(made.element);
      for (const location of made.locations) owners.set(location, { control: made, index });
    }
    if (!node.controls.length) body.push(...overview(node, index));
    const panel = h(
      "section",
      { role: "tabpanel", id: panelId, "aria-labelledby": tabId, class: "panel", hidden: index !== 0, tabindex: "0" },
      h("h2", { text: node.label }),
      body,
    );
    tabs.push({ tab, panel });
    tablist.append(tab);
    panels.append(panel);
  });

  function overview(node, index) {
    const children = [];
    for (let i = index + 1; i < spec.nodes.length && spec.nodes[i].level > node.level; i++) {
      children.push(spec.nodes[i].label);
    }
    return [
      h(
        "dl",
        { class: "facts" },
        h("dt", { text: "Standard report" }),
        h("dd", { text: `${spec.title}${spec.direction ? ` (${spec.direction})` : ""}, template ${spec.templateId}` }),
        h("dt", { text: "Product" }),
        h("dd", { text: PRODUCTS[spec.product] ?? spec.product }),
        h("dt", { text: "Data" }),
        h("dd", { text: CATEGORIES[spec.dataCat] ?? spec.dataCat }),
        h("dt", { text: "Report category" }),
        h("dd", { text: spec.category }),
      ),
      children.length ? h("p", { class: "hint", text: `In this section: ${children.join(", ")}.` }) : null,
    ];
  }

  function select(index, focusTab = false) {
    tabs.forEach(({ tab, panel }, i) => {
      const on = i === index;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      panel.hidden = !on;
    });
    if (focusTab) tabs[index].tab.focus();
  }

  function keys(event, index) {
    const last = tabs.length - 1;
    const to = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: last }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    select(Math.max(0, Math.min(last, to)), true);
  }

  const shown = [];
  function clearErrors() {
    formError.hidden = true;
    formError.replaceChildren();
    for (const target of shown.splice(0)) target.show("");
  }

  function showError(location, message) {
    const owner = location ? owners.get(location) : null;
    const target = owner?.control.target(location);
    if (!target) {
      formError.replaceChildren(h("p", { text: message }));
      formError.hidden = false;
      formError.focus();
      return;
    }
    target.show(message);
    shown.push(target);
    select(owner.index);
    target.focus?.focus();
  }

  async function save(active) {
    clearErrors();
    result.textContent = active ? "Saving and scheduling…" : "Saving…";
    buttons.forEach((b) => (b.disabled = true));
    try {
      const values = new Map();
      for (const control of controls) control.write(values);
      const ard = buildArd({
        user: services.user,
        entp: services.entp,
        templateId: spec.templateId,
        product: spec.product,
        category: spec.category,
        lang: defaults.lang,
        curr: defaults.curr,
        active,
        values,
      });
      const answer = await services.send("RM", ard);
      const code = answer.status || errorOf(answer.message);
      if (code) {
        result.textContent = "";
        const where = fieldOf(code, values, spec.product);
        const prefix = where ? "" : "The Report Manager refused the report: ";
        showError(where, `${prefix}${describeCode(code)}`);
        return;
      }
      const id = text(answer.message?.get("USERRPTID"));
      const name = text(values.get("NAME"));
      let replaced = "";
      if (spec.mode === "edit" && spec.reportId && spec.reportId !== id) {
        const drd = new Message("DRD", [new Member("USERID", services.user), new Member("USERRPTID", spec.reportId)]);
        const gone = await services.send("RM", drd);
        const dcode = gone.status || errorOf(gone.message);
        replaced = dcode
          ? ` The previous definition (report ${spec.reportId}) could not be deleted: ${describeCode(dcode)}.`
          : ` It replaces report ${spec.reportId}.`;
      }
      const message = active
        ? `“${name}” is saved as report ${id} and scheduled to run.${replaced} ` +
          "Its results will arrive in the Message Center."
        : `“${name}” is saved as report ${id}.${replaced}`;
      done({ message, answer: answer.text, active });
    } catch (err) {
      result.textContent = "";
      showError(null, `The report could not be saved: ${err.message}`);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  const buttons = [
    h("button", { type: "button", text: "Save and Exit", onclick: () => save(false) }),
    h("button", { type: "button", class: "primary", text: "Save and Run", onclick: () => save(true) }),
    h("button", {
      type: "button",
      class: "quiet",
      text: "Cancel",
      onclick: async () => {
        const leave = await services.confirm({
          title: "Leave without saving?",
          message: "The changes made to this report are not saved.",
          confirm: "Leave",
          cancel: "Stay",
        });
        if (leave) done(null);
      },
    }),
  ];

  const root = h(
    "div",
    { class: "builder", "aria-labelledby": headingId, role: "region" },
    h("h1", { id: headingId, tabindex: "-1", text: heading }),
    h("p", { class: "lead", text: `${PRODUCTS[spec.product] ?? spec.product} · ${CATEGORIES[spec.dataCat] ?? spec.dataCat} · ${spec.category}` }),
    formError,
    h("div", { class: "builder-body" }, tablist, panels),
    h("div", { class: "actions builder-actions" }, buttons),
    result,
  );
  container.replaceChildren(root);
  root.querySelector("h1").focus();
  return { root };
}

/** The GPL request for a pick list in the context of the report being built. */
export function pickListRequest(kind, spec) {
  switch (kind) {
    case "PL_FIELDS":
      return `GPL<PL_FIELDS,RPTTMPID=${spec.templateId}>`;
    case "PL_ACCESS":
    case "PL_RANGE":
    case "PL_USAGE":
      return `GPL<${kind},IO=${spec.io},PRODUCT=${spec.product},DATACAT=${spec.dataCat}>`;
    case "PL_HIER":
    case "PL_GEO":
      return `GPL<${kind},USERRPTID=${spec.reportId || 0}>`;
    default:
      return `GPL<${kind}>`;
  }
}
