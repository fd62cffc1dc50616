// The Report Requestor (seed 001 Figure 13(a), steps 602-630).
//
// Theory of operation
// -------------------
// The "priced reporting dialog screen" of step 602: the user picks the product, data
// type (priced / unpriced), report type and direction -- each offered from the
// user's entitlements (the REPORTS of the user context) -- and the requestor asks
// the Report Manager for the standard templates (GRTL -> SRTL), listed by report
// category.  For the category shown it lists the user's report inventory (GURL per
// template -> SURL: name, status, last update; steps 605-612).  From there:
//
// * New report / Edit -- GRTD or GURD, then the customization screens built from the
//   SRTD / SURD node tree (builder.js; steps 615-630);
// * Copy (CRD, under a new name), Reschedule / Unschedule (URS, ACTIVE 1 / 0) and
//   Delete (DRD, after a confirmation) -- each answered in a status line, and the
//   inventory read again.
//
// Everything goes through the backplane's services: messages (a session that ends
// is logged on again without losing the screen), pick lists, the common objects
// (time zone, language, currency) and dialogs.

import { h, replaceChildren, uid } from "../dom.js";
import { Member, Message } from "../protocol/metadata.js";
import { categories, errorOf, nodes, text } from "../wire.js";
import { describeCode, openBuilder } from "./builder.js";

const PRODUCTS = { V: "Vnet", C: "CVNS", S: "Vision", T: "Toll Free", H: "Broadband" };
const DATA_CATS = { P: "Priced", U: "Unpriced" };
const DATA_TYPES = { A: "All report types", R: "Reports", D: "Call detail" };
const DIRECTIONS = { O: "Outbound", I: "Inbound", B: "Inbound and outbound" };
const WAYS = { Outbound: "O", Inbound: "I" };
/** GURL requests in flight at once while the inventory loads */
const PARALLEL = 4;

function select(label, options, value, onchange) {
  const id = uid("sel");
  const el = h(
    "select",
    { id, onchange },
    Object.entries(options).map(([code, name]) => h("option", { value: code, text: name, selected: code === value })),
  );
  return { el, field: h("div", { class: "field" }, h("label", { for: id, text: label }), el) };
}

function stampText(stamp) {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(stamp ?? "");
  return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]} GMT` : stamp || "-";
}

/**
 * Start the Report Requestor in *container* (the backplane's launchApp).
 * @param {HTMLElement} container
 * @param {object} services the backplane's services
 */
export function start(container, services) {
  const ctx = services.context;
  const entitled = ctx.reports.map((r) => ({ product: r[0], dataCat: r[1], dataType: r[2] }));
  const products = ctx.products.filter((p) => entitled.some((r) => r.product === p));
  const state = {
    product: products[0] ?? ctx.products[0] ?? "V",
    dataCat: "P",
    dataType: "A",
    io: "O",
    categories: [],
    category: "",
    inventory: [],
    defaults: { timezone: ctx.timezone, lang: ctx.lang, curr: ctx.curr },
    closed: false,
  };

  const mainView = h("div", { class: "requestor-main" });
  const builderView = h("div", { class: "requestor-builder", hidden: true });
  container.replaceChildren(mainView, builderView);

  const headingId = uid("requestor-heading");
  const common = h("p", { class: "lead", text: "Loading your time zone, language and currency…" });
  const status = h("div", { class: "message", role: "status" });
  const alert = h("div", { class: "message error", role: "alert", hidden: true });
  const options = h("div", { class: "options" });
  const categoryBox = h("div", { class: "category" });
  const templates = h("section", { class: "templates", "aria-labelledby": uid("t") });
  const inventory = h("section", { class: "inventory", "aria-labelledby": uid("i") });
  const toolbar = h(
    "div",
    { class: "app-toolbar" },
    h("button", { type: "button", class: "quiet", text: "Close Report Requestor", onclick: () => services.close() }),
  );

  mainView.append(
    toolbar,
    h("h1", { id: headingId, tabindex: "-1", text: "Report Requestor" }),
    common,
    h("section", { class: "card", "aria-label": "Report options" }, h("h2", { text: "Report options" }), options, categoryBox),
    status,
    alert,
    h("div", { class: "requestor-lists" }, templates, inventory),
  );

  services
    .commonObjects()
    .then(({ timezone, lang, curr }) => {
      state.defaults = { timezone: timezone.code, lang: lang.code, curr: curr.code };
      common.textContent = `Time zone: ${timezone.description}. Language: ${lang.description}. Currency: ${curr.description}.`;
    })
    .catch(() => {
      common.textContent = `Time zone ${ctx.timezone}, language ${ctx.lang}, currency ${ctx.curr}.`;
    });

  function say(message, { error = false } = {}) {
    if (error) {
      alert.textContent = message;
      alert.hidden = !message;
      status.textContent = "";
    } else {
      status.textContent = message;
      alert.hidden = true;
    }
  }

  // -- the options: product, data type, report type, direction --------------------------

  function allowed(field) {
    const matching = entitled.filter(
      (r) => r.product === state.product && (field === "dataCat" || r.dataCat === state.dataCat),
    );
    if (field === "dataCat") return [...new Set(matching.map((r) => r.dataCat))];
    return [...new Set(matching.map((r) => r.dataType))];
  }

  function renderOptions() {
    const cats = allowed("dataCat");
    if (!cats.includes(state.dataCat)) state.dataCat = cats[0] ?? "P";
    const types = allowed("dataType");
    const typeOptions = Object.fromEntries(
      Object.entries(DATA_TYPES).filter(([code]) => code === "A" || types.includes(code)),
    );
    if (!(state.dataType in typeOptions)) state.dataType = "A";
    const change = (key) => (event) => {
      state[key] = event.target.value;
      renderOptions();
      loadTemplates();
    };
    const productOptions = Object.fromEntries((products.length ? products : [state.product]).map((p) => [p, PRODUCTS[p] ?? p]));
    replaceChildren(
      options,
      select("Product", productOptions, state.product, change("product")).field,
      select("Data type", Object.fromEntries(cats.map((c) => [c, DATA_CATS[c] ?? c])), state.dataCat, change("dataCat")).field,
      select("Report type", typeOptions, state.dataType, change("dataType")).field,
      select("Direction", DIRECTIONS, state.io, change("io")).field,
    );
  }

  function renderCategory() {
    if (!state.categories.length) {
      replaceChildren(categoryBox);
      return;
    }
    const names = Object.fromEntries(state.categories.map((c) => [c.description, c.description]));
    const choice = select("Report category", names, state.category, (event) => {
      state.category = event.target.value;
      renderTemplates();
      loadInventory();
    });
    replaceChildren(categoryBox, choice.field);
  }

  // -- templates (GRTL -> SRTL) --------------------------------------------------------

  async function loadTemplates() {
    say("Loading the standard reports…");
    const grtl = new Message("GRTL", [
      new Member("PRODUCT", state.product),
      new Member("DATATYPE", state.dataType),
      new Member("DATA CAT", state.dataCat),
      new Member("IO", state.io),
    ]);
    let answer;
    try {
      answer = await services.send("RM", grtl);
    } catch (err) {
      say(`The standard reports could not be loaded: ${err.message}`, { error: true });
      return;
    }
    const code = answer.status || errorOf(answer.message);
    if (code) {
      state.categories = [];
      say(`The Report Manager refused the list of standard reports: ${describeCode(code)}`, { error: true });
    } else {
      state.categories = categories(answer.message).map((c) => ({
        description: c.description,
        templates: c.rows.map(([title, id, way]) => ({ title, id, way })),
      }));
      if (!state.categories.some((c) => c.description === state.category)) {
        state.category = state.categories[0]?.description ?? "";
      }
      say(state.categories.length ? "" : "No standard reports for this product, data type and direction.");
    }
    renderCategory();
    renderTemplates();
    loadInventory();
  }

  function currentTemplates() {
    return state.categories.find((c) => c.description === state.category)?.templates ?? [];
  }

  function renderTemplates() {
    const headingIdT = templates.getAttribute("aria-labelledby");
    const list = currentTemplates();
    replaceChildren(
      templates,
      h("h2", { id: headingIdT, text: state.category ? `Standard reports: ${state.category}` : "Standard reports" }),
      list.length
        ? h(
            "ul",
            { class: "template-list" },
            list.map((t) =>
              h(
                "li",
                null,
                h("span", { class: "template-title", text: t.title }),
                h("span", { class: "template-way", text: t.way }),
                h("button", {
                  type: "button",
                  text: "New report",
                  "aria-label": `New report from ${t.title} (${t.way})`,
                  onclick: () => openTemplate(t),
                }),
              ),
            ),
          )
        : h("p", { class: "hint", text: "No standard reports to show." }),
    );
  }

  // -- the inventory (GURL -> SURL per template) ------------------------------------

  let generation = 0;
  async function loadInventory() {
    const mine = ++generation;
    const list = currentTemplates();
    inventory.setAttribute("aria-busy", "true");
    const found = [];
    const failures = [];
    const queue = [...list];
    const worker = async () => {
      while (queue.length) {
        const t = queue.shift();
        const gurl = new Message("GURL", [
          new Member("USERID", services.user),
          new Member("RPTTMPID", t.id),
          new Member("ENTPID", services.entp),
          new Member("PRODUCT", state.product),
          new Member("DATA CAT", state.dataCat),
        ]);
        try {
          const answer = await services.send("RM", gurl);
          const code = answer.status || errorOf(answer.message);
          if (code) {
            failures.push(code);
            continue;
          }
          for (const c of categories(answer.message)) {
            for (const [name, id, active, templateTitle, updated] of c.rows) {
              found.push({ name, id, active: active === "1", templateTitle, updated, category: c.description, template: t });
            }
          }
        } catch (err) {
          failures.push(err.message);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, list.length) }, worker));
    if (mine !== generation || state.closed) return;
    state.inventory = found.sort((a, b) => a.name.localeCompare(b.name) || Number(a.id) - Number(b.id));
    renderInventory(failures);
  }

  function renderInventory(failures = []) {
    const headingIdI = inventory.getAttribute("aria-labelledby");
    inventory.removeAttribute("aria-busy");
    const rows = state.inventory.map((r) =>
      h(
        "tr",
        { dataset: { report: r.id } },
        h("th", { scope: "row", text: r.name }),
        h("td", { "data-label": "Report ID", text: r.id }),
        h("td", { "data-label": "Standard report", text: `${r.templateTitle} (${r.template.way})` }),
        h("td", { "data-label": "Status", text: r.active ? "Scheduled" : "Saved" }),
        h("td", { "data-label": "Last update", text: stampText(r.updated) }),
        h(
          "td",
          { class: "row-actions" },
          h("button", { type: "button", text: "Edit", "aria-label": `Edit ${r.name}`, onclick: () => editReport(r) }),
          h("button", { type: "button", text: "Copy", "aria-label": `Copy ${r.name}`, onclick: () => copyReport(r) }),
          r.active
            ? h("button", { type: "button", text: "Unschedule", "aria-label": `Unschedule ${r.name}`, onclick: () => reschedule(r, false) })
            : h("button", { type: "button", text: "Reschedule", "aria-label": `Reschedule ${r.name}`, onclick: () => reschedule(r, true) }),
          h("button", { type: "button", class: "danger", text: "Delete", "aria-label": `Delete ${r.name}`, onclick: () => deleteReport(r) }),
        ),
      ),
    );
    replaceChildren(
      inventory,
      h("h2", { id: headingIdI, text: "My reports" }),
      failures.length ? h("p", { class: "message error", text: `Some report lists could not be read (${failures.join(", ")}).` }) : null,
      rows.length
        ? h(
            "table",
            { class: "inventory-table" },
            h("caption", { text: state.category ? `Your reports in ${state.category}` : "Your reports" }),
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["Report", "Report ID", "Standard report", "Status", "Last update", "Actions"].map((c) =>
                  h("th", { scope: "col", text: c }),
                ),
              ),
            ),
            h("tbody", null, rows),
          )
        : h("p", { class: "hint", text: state.category ? `You have no reports in ${state.category} yet.` : "No reports." }),
    );
  }

  async function ask(message, what) {
    const answer = await services.send("RM", message);
    const code = answer.status || errorOf(answer.message);
    if (code) {
      say(`${what} failed: ${describeCode(code)}`, { error: true });
      return null;
    }
    return answer;
  }

  async function copyReport(r) {
    const name = await services.prompt({
      title: `Copy “${r.name}”`,
      label: "Name of the copy",
      value: `Copy of ${r.name}`.slice(0, 50),
      maxlength: 50,
      confirm: "Copy",
      validate: (value) => (value ? (value.length > 50 ? "At most 50 characters." : "") : "Enter a name for the copy."),
    });
    if (name === null) return;
    const answer = await ask(new Message("CRD", [new Member("USERRPTID", r.id), new Member("NAME", name)]), "Copying the report");
    if (!answer) return;
    say(`“${r.name}” is copied as “${name}”, report ${text(answer.message.get("USERRPTID"))}.`);
    await loadInventory();
  }

  async function reschedule(r, active) {
    const answer = await ask(new Message("URS", [new Member("USERRPTID", r.id), new Member("ACTIVE", active ? "1" : "0")]), active ? "Scheduling the report" : "Unscheduling the report");
    if (!answer) return;
    say(active ? `“${r.name}” is scheduled again.` : `“${r.name}” is saved only; it will not run.`);
    await loadInventory();
    inventory.querySelector(`tr[data-report="${CSS.escape(r.id)}"] button`)?.focus();
  }

  async function deleteReport(r) {
    const sure = await services.confirm({
      title: `Delete “${r.name}”?`,
      message: `Report ${r.id} and its schedule are deleted. This cannot be undone.`,
      confirm: "Delete",
    });
    if (!sure) return;
    const answer = await ask(new Message("DRD", [new Member("USERID", services.user), new Member("USERRPTID", r.id)]), "Deleting the report");
    if (!answer) return;
    say(`“${r.name}” (report ${r.id}) is deleted.`);
    await loadInventory();
    inventory.querySelector("h2")?.focus?.();
  }

  // -- the builder (GRTD / GURD -> customization screens) ------------------------------

  function showBuilder(spec) {
    mainView.hidden = true;
    builderView.hidden = false;
    services.setTitle(spec.mode === "edit" ? `Edit ${spec.reportName}` : `New ${spec.title} report`);
    openBuilder(builderView, spec, services, state.defaults, (result) => {
      builderView.hidden = true;
      builderView.replaceChildren();
      mainView.hidden = false;
      services.setTitle("Report Requestor");
      if (result) {
        replaceChildren(
          status,
          h("p", { text: result.message }),
          result.active && result.answer ? h("p", { class: "answer" }, "The Report Manager answered: ", h("code", { text: result.answer })) : null,
        );
        alert.hidden = true;
        loadInventory();
      }
      mainView.querySelector("h1")?.focus();
    });
  }

  async function openTemplate(t) {
    say(`Opening ${t.title}…`);
    const answer = await ask(new Message("GRTD", [new Member("REPORTID", t.id)]), `Opening ${t.title}`);
    if (!answer) return;
    say("");
    showBuilder({
      mode: "new",
      templateId: t.id,
      title: t.title,
      direction: t.way,
      io: WAYS[t.way] ?? state.io,
      product: state.product,
      dataCat: state.dataCat,
      category: state.category,
      nodes: nodes(answer.message),
    });
  }

  async function editReport(r) {
    say(`Opening ${r.name}…`);
    const answer = await ask(new Message("GURD", [new Member("REPORTID", r.id)]), `Opening ${r.name}`);
    if (!answer) return;
    say("");
    const tree = nodes(answer.message);
    const statusNode = tree.find((n) => n.controls.some((c) => c.location === "USERRPTID"));
    const value = (loc) => text(statusNode?.controls.find((c) => c.location === loc)?.value);
    showBuilder({
      mode: "edit",
      templateId: text(answer.message.get("ID")) || r.template.id,
      title: r.templateTitle,
      direction: r.template.way,
      io: WAYS[r.template.way] ?? state.io,
      product: value("PRODUCT") || state.product,
      dataCat: state.dataCat,
      category: value("CATEGORY") || r.category,
      reportId: r.id,
      reportName: r.name,
      nodes: tree,
    });
  }

  renderOptions();
  loadTemplates();
  return {
    close() {
      state.closed = true;
    },
  };
}
