// The Message Center (seed 001 Figure 5 "Message Center 77"; the Inbox client 210).
//
// Theory of operation
// -------------------
// Three tabs -- reports, call detail, news (the inbox's categories R, D, F) -- each
// listing the user's items (``L`` -> items.js) in the seed's order with their size,
// when they expire and whether they have been read.  From a row:
//
// * Open -- the Report Viewer (viewer/index.js) in place of the list, fetching the
//   item over bulk transfer; opening marks the item read (``U`` ACK=1);
// * Mark read / Mark unread (``U`` ACK), Keep for… (``U`` TTL, days from arrival);
// * Save -- the item's data and metadata to the user's computer (one zip archive);
// * Delete (``D<INBOXID>``), and Delete all (``D<USERID,ENTPID>``), each after a
//   confirmation.
// An item the fulfilling server could not produce (ERRFLAG: no metadata) says so,
// with its reason, read from its data file.
//
// Polling: every POLL_SECONDS the Message Center asks for items later than the last
// INBOXID of each tab (``L`` with INBOXID) -- each request its own HTTP request, so a
// large download on another connection never holds it up (seed: "the polling thread
// on the client uses a separate connection to check for new messages").  New items
// join their list marked "New", and the count of new items is shown above the list
// and in the tab names until they are opened.  Polls are not user activity: they
// stop after IDLE_MINUTES without a key press or pointer event (so the session's
// idle limit still applies) and while the page is hidden, and a poll that finds the
// session gone stops polling rather than asking for a logon; "Check for new items"
// polls at once.  ``localStorage["starwrs.inbox.poll"]`` (seconds, at least 1)
// overrides the interval.

import { announce, h, replaceChildren, uid } from "../dom.js";
import { codeMeaning } from "../protocol/errors.js";
import { SessionEnded, dispatch } from "../transport.js";
import { errorOf } from "../wire.js";
import { download } from "../viewer/bulk.js";
import { failureText, fetchItem, openViewer, saveFiles } from "../viewer/index.js";
import { textOf } from "../viewer/files.js";
import {
  CATEGORIES,
  deleteAllMessage,
  deleteMessage,
  fetchResource,
  itemsOf,
  listMessage,
  sizeText,
  sortItems,
  ttlDays,
  ttlText,
  updateMessage,
} from "./items.js";

export const POLL_SECONDS = 10;
export const IDLE_MINUTES = 10;

function pollInterval() {
  try {
    const n = Number(localStorage.getItem("starwrs.inbox.poll"));
    if (Number.isFinite(n) && n >= 1) return n * 1000;
  } catch {
    // no storage: the default
  }
  return POLL_SECONDS * 1000;
}

/**
 * Start the Message Center in *container* (the backplane's launchApp).
 * @param {HTMLElement} container
 * @param {object} services the backplane's services
 */
export function start(container, services) {
  const { user, entp } = services;
  const state = {
    tab: "R",
    items: { R: [], D: [], F: [] },
    latest: { R: 0, D: 0, F: 0 },
    loaded: { R: false, D: false, F: false },
    fresh: new Set(),
    reasons: new Map(),
    viewer: null,
    closed: false,
    polling: true,
    lastActivity: Date.now(),
    timer: null,
  };

  const listView = h("div", { class: "inbox-main" });
  const viewerView = h("div", { class: "inbox-viewer", hidden: true });
  const pollStatus = h("p", { class: "poll-status", role: "status" });
  container.replaceChildren(pollStatus, listView, viewerView);

  const heading = h("h1", { tabindex: "-1", text: "Message Center" });
  const status = h("div", { class: "message", role: "status" });
  const alert = h("div", { class: "message error", role: "alert", hidden: true });
  const tablist = h("div", { class: "inbox-tabs", role: "tablist", "aria-label": "Inbox categories" });
  const panels = h("div", { class: "inbox-panels" });
  const checkNow = h("button", { type: "button", text: "Check for new items", onclick: () => poll(true) });
  const deleteAll = h("button", { type: "button", class: "danger", text: "Delete all items", onclick: () => removeAll() });
  listView.append(
    h(
      "div",
      { class: "app-toolbar" },
      h("button", { type: "button", class: "quiet", text: "Close Message Center", onclick: () => services.close() }),
    ),
    heading,
    h("p", { class: "lead", text: "Your completed reports, call detail and news. Times are GMT." }),
    h("div", { class: "inbox-actions" }, checkNow, deleteAll),
    status,
    alert,
    tablist,
    panels,
  );

  const tabs = new Map();
  for (const { code, name } of CATEGORIES) {
    const panelId = uid("inbox-panel");
    const tabId = uid("inbox-tab");
    const tab = h("button", {
      type: "button",
      role: "tab",
      id: tabId,
      class: "inbox-tab",
      "aria-controls": panelId,
      "aria-selected": code === state.tab ? "true" : "false",
      tabindex: code === state.tab ? "0" : "-1",
      onclick: () => selectTab(code),
      onkeydown: (event) => tabKey(event, code),
    });
    const panel = h("div", { role: "tabpanel", id: panelId, class: "inbox-panel", "aria-labelledby": tabId, hidden: code !== state.tab });
    tablist.append(tab);
    panels.append(panel);
    tabs.set(code, { tab, panel, name });
  }

  function say(text, { error = false } = {}) {
    if (error) {
      alert.textContent = text;
      alert.hidden = !text;
    } else {
      status.textContent = text;
      alert.hidden = true;
    }
  }

  function tabKey(event, code) {
    const codes = CATEGORIES.map((c) => c.code);
    const i = codes.indexOf(code);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: codes.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const target = codes[(next + codes.length) % codes.length];
    selectTab(target);
    tabs.get(target).tab.focus();
  }

  function selectTab(code) {
    state.tab = code;
    for (const [c, { tab, panel }] of tabs) {
      tab.setAttribute("aria-selected", c === code ? "true" : "false");
      tab.tabIndex = c === code ? 0 : -1;
      panel.hidden = c !== code;
    }
    renderTabs();
  }

  function freshIn(code) {
    return state.items[code].filter((i) => state.fresh.has(i.id)).length;
  }

  function renderTabs() {
    let fresh = 0;
    for (const [code, { tab, name }] of tabs) {
      const n = state.items[code].length;
      const f = freshIn(code);
      fresh += f;
      replaceChildren(
        tab,
        name,
        h("span", { class: "count", text: ` (${n})` }),
        f ? h("span", { class: "badge", text: `${f} new` }) : null,
      );
    }
    const paused = state.polling ? "" : " Checking for new items is paused: select “Check for new items”.";
    pollStatus.textContent = (fresh ? `${fresh} new item${fresh === 1 ? "" : "s"} arrived.` : "") + paused;
    pollStatus.classList.toggle("has-news", fresh > 0);
  }

  // -- the lists ------------------------------------------------------------------------

  function renderPanel(code) {
    const { panel, name } = tabs.get(code);
    const list = sortItems(state.items[code]);
    if (!state.loaded[code]) {
      replaceChildren(panel, h("p", { class: "loading", text: `Loading ${name.toLowerCase()}…` }));
      return;
    }
    if (!list.length) {
      replaceChildren(panel, h("p", { class: "hint", text: `No ${name.toLowerCase()} in your inbox.` }));
      return;
    }
    const table = h(
      "table",
      { class: "inventory-table inbox-table" },
      h("caption", { text: `${name}: ${list.length} item${list.length === 1 ? "" : "s"}, by type, report type, name, then newest first` }),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ["Name", "Type", "Report type", "Requested (GMT)", "Size", "Expires", "Read", "Actions"].map((t) => h("th", { scope: "col", text: t })),
        ),
      ),
      h("tbody", null, list.map((item) => row(item))),
    );
    // a poll that brings new items redraws the panel: the button the user is on (by
    // keyboard, or given focus on leaving the viewer) must stay focused, not drop to <body>
    const kept = focusedAction(panel);
    replaceChildren(panel, table);
    kept?.();
  }

  /** Where focus is among *panel*'s row buttons, as a function that puts it back after a redraw. */
  function focusedAction(panel) {
    const button = document.activeElement;
    const tr = button instanceof HTMLButtonElement && panel.contains(button) ? button.closest("tr[data-inboxid]") : null;
    if (!tr) return null;
    const index = [...tr.querySelectorAll("button")].indexOf(button);
    const id = tr.dataset.inboxid;
    return () => panel.querySelector(`tr[data-inboxid="${id}"]`)?.querySelectorAll("button")[index]?.focus();
  }

  function row(item) {
    const title = item.title || `Item ${item.id}`;
    const flags = [];
    if (state.fresh.has(item.id)) flags.push(h("span", { class: "badge", text: "New" }));
    if (item.failed) flags.push(h("span", { class: "badge failed", text: "Could not be produced" }));
    const reason = item.failed ? h("p", { class: "reason", text: state.reasons.get(item.id) ?? "Reading the reason…" }) : null;
    if (item.failed && !state.reasons.has(item.id)) loadReason(item, reason);
    return h(
      "tr",
      { dataset: { inboxid: String(item.id) }, class: item.ack ? "read" : "unread" },
      h("th", { scope: "row" }, h("span", { class: "item-title", text: title }), " ", flags, reason),
      h("td", { "data-label": "Type", text: item.type }),
      h("td", { "data-label": "Report type", text: item.reportType || "—" }),
      h("td", { "data-label": "Requested (GMT)", text: item.requested }),
      h("td", { "data-label": "Size", text: sizeText(item.fsize + item.msize) }),
      h("td", { "data-label": "Expires", text: `${ttlText(item.expires)} (${item.expires})` }),
      h("td", { "data-label": "Read", text: item.ack ? "Read" : "Unread" }),
      h(
        "td",
        { "data-label": "Actions" },
        h(
          "div",
          { class: "row-actions" },
          h("button", { type: "button", class: "primary", text: "Open", "aria-label": `Open ${title}`, onclick: () => open(item) }),
          h("button", {
            type: "button",
            text: item.ack ? "Mark unread" : "Mark read",
            "aria-label": `${item.ack ? "Mark unread" : "Mark read"}: ${title}`,
            onclick: () => acknowledge(item, !item.ack),
          }),
          h("button", { type: "button", text: "Keep…", "aria-label": `Keep ${title} for…`, onclick: () => changeTtl(item) }),
          h("button", { type: "button", text: "Save", "aria-label": `Save ${title}`, onclick: () => save(item) }),
          h("button", { type: "button", class: "danger", text: "Delete", "aria-label": `Delete ${title}`, onclick: () => remove(item) }),
        ),
      ),
    );
  }

  async function loadReason(item, holder) {
    state.reasons.set(item.id, "Reading the reason…");
    try {
      const { bytes } = await download(fetchResource(item.id, "D"));
      const text = textOf(bytes).trim().split(/\r?\n/).slice(1).join(" ").slice(0, 400);
      state.reasons.set(item.id, text || textOf(bytes).slice(0, 400));
    } catch (err) {
      state.reasons.set(item.id, failureText(err));
    }
    holder.textContent = state.reasons.get(item.id);
  }

  async function load(code) {
    let answer;
    try {
      answer = await services.send("INBX", listMessage(user, entp, code));
    } catch (err) {
      say(`The inbox could not be reached: ${err.message}`, { error: true });
      return;
    }
    const error = answer.status || errorOf(answer.message);
    if (error || !answer.message) {
      say(`The inbox refused the list: ${codeMeaning(error) || "error"} (${error}).`, { error: true });
      return;
    }
    const { items, latest } = itemsOf(answer.message);
    state.items[code] = items;
    state.latest[code] = Math.max(latest, ...items.map((i) => i.id), 0);
    state.loaded[code] = true;
    renderPanel(code);
    renderTabs();
  }

  async function loadAll() {
    await Promise.all(CATEGORIES.map((c) => load(c.code)));
  }

  // -- polling --------------------------------------------------------------------------

  const activity = () => {
    state.lastActivity = Date.now();
    if (!state.polling && !state.closed) {
      state.polling = true;
      renderTabs();
      schedule();
    }
  };
  for (const type of ["keydown", "pointerdown"]) document.addEventListener(type, activity, { passive: true });

  function schedule() {
    clearTimeout(state.timer);
    if (state.closed || !state.polling) return;
    state.timer = setTimeout(() => poll(false), pollInterval());
  }

  async function poll(now) {
    clearTimeout(state.timer);
    if (state.closed) return;
    if (now) activity();
    const idle = Date.now() - state.lastActivity > IDLE_MINUTES * 60_000;
    if (!now && (idle || document.visibilityState === "hidden")) {
      state.polling = !idle;
      renderTabs();
      if (!idle) schedule();
      return;
    }
    const arrived = [];
    try {
      for (const { code } of CATEGORIES) {
        if (!state.loaded[code]) continue;
        const answer = await dispatch("INBX", listMessage(user, entp, code, state.latest[code]));
        if (answer.status || !answer.message) continue;
        const { items, latest } = itemsOf(answer.message);
        const known = new Set(state.items[code].map((i) => i.id));
        const added = items.filter((i) => !known.has(i.id));
        state.latest[code] = Math.max(state.latest[code], latest, ...items.map((i) => i.id));
        if (added.length) {
          state.items[code] = [...state.items[code], ...added];
          for (const item of added) state.fresh.add(item.id);
          arrived.push(...added);
          renderPanel(code);
        }
      }
    } catch (err) {
      if (err instanceof SessionEnded) {
        state.polling = false;
        renderTabs();
        return;
      }
      // a network failure: try again at the next interval
    }
    if (arrived.length) {
      renderTabs();
      announce(`${arrived.length} new item${arrived.length === 1 ? "" : "s"} in your Message Center: ${arrived.map((i) => i.title).join(", ")}.`);
    } else if (now) {
      say("No new items.");
    }
    schedule();
  }

  // -- actions on items --------------------------------------------------------------------

  function replaceItem(item, changes) {
    const code = item.category in state.items ? item.category : state.tab;
    state.items[code] = state.items[code].map((i) => (i.id === item.id ? { ...i, ...changes } : i));
    renderPanel(code);
    renderTabs();
    return state.items[code].find((i) => i.id === item.id);
  }

  async function update(item, fields) {
    const answer = await services.send("INBX", updateMessage(user, entp, item.id, fields));
    const error = answer.status || errorOf(answer.message);
    if (error) {
      say(`The inbox refused the change to “${item.title}”: ${codeMeaning(error) || "error"} (${error}).`, { error: true });
      return false;
    }
    return true;
  }

  async function acknowledge(item, ack) {
    if (!(await update(item, { ack }))) return;
    replaceItem(item, { ack });
    if (ack) state.fresh.delete(item.id);
    renderTabs();
    say(`“${item.title}” is marked ${ack ? "read" : "unread"}.`);
    focusRow(item, ack ? "Mark unread" : "Mark read");
  }

  async function changeTtl(item) {
    const days = await services.prompt({
      title: `Keep “${item.title}”`,
      label: "Days to keep it, counted from the day it arrived (1 to 999)",
      value: String(ttlDays(item)),
      maxlength: 3,
      confirm: "Keep",
      validate: (text) => (/^\d{1,3}$/.test(text) && Number(text) >= 1 ? "" : "Enter a number of days from 1 to 999."),
    });
    if (days === null) return;
    if (!(await update(item, { ack: item.ack, ttl: Number(days) }))) return;
    say(`“${item.title}” is kept for ${days} day${days === "1" ? "" : "s"} from the day it arrived.`);
    await load(item.category);
    focusRow(item, "Keep…");
  }

  async function remove(item) {
    const yes = await services.confirm({
      title: `Delete “${item.title}”?`,
      message: "The item and its files are removed from your inbox. This cannot be undone.",
      confirm: "Delete",
    });
    if (!yes) return;
    const answer = await services.send("INBX", deleteMessage(item.id));
    const error = answer.status || errorOf(answer.message);
    if (error && error !== 5125) {
      say(`The inbox refused to delete “${item.title}”: ${codeMeaning(error) || "error"} (${error}).`, { error: true });
      return;
    }
    state.items[item.category] = state.items[item.category].filter((i) => i.id !== item.id);
    state.fresh.delete(item.id);
    renderPanel(item.category);
    renderTabs();
    say(`“${item.title}” is deleted.`);
    heading.focus();
  }

  async function removeAll() {
    const count = Object.values(state.items).reduce((n, list) => n + list.length, 0);
    const yes = await services.confirm({
      title: "Delete every item?",
      message: `All ${count} items of your inbox -- reports, call detail and news -- and their files are removed. This cannot be undone.`,
      confirm: "Delete all",
    });
    if (!yes) return;
    const answer = await services.send("INBX", deleteAllMessage(user, entp));
    const error = answer.status || errorOf(answer.message);
    if (error && error !== 5125) {
      say(`The inbox refused to delete your items: ${codeMeaning(error) || "error"} (${error}).`, { error: true });
      return;
    }
    state.fresh.clear();
    await loadAll();
    say("Every item is deleted.");
  }

  async function save(item) {
    say(`Saving “${item.title}”…`);
    try {
      const files = await fetchItem(item, {
        onProgress: (held, total) => say(`Saving “${item.title}”: ${total ? Math.floor((100 * held) / total) : 0}%`),
        relogon: () => services.send("INBX", `F<INBOXID=${item.id}>`).then(() => {}),
      });
      const name = saveFiles(item, files);
      say(`“${item.title}” is saved as ${name}${files.meta ? " (its data and metadata)" : ""}.`);
    } catch (err) {
      say(failureText(err), { error: true });
    }
  }

  function focusRow(item, text) {
    const tr = listView.querySelector(`tr[data-inboxid="${item.id}"]`);
    const button = [...(tr?.querySelectorAll("button") ?? [])].find((b) => b.textContent === text);
    button?.focus();
  }

  function open(item) {
    state.fresh.delete(item.id);
    renderTabs();
    if (!item.ack) {
      update(item, { ack: true }).then((ok) => {
        if (ok) replaceItem(item, { ack: true });
      });
    }
    listView.hidden = true;
    viewerView.hidden = false;
    services.setTitle(item.title);
    state.viewer = openViewer(viewerView, {
      item,
      services,
      onClose: () => {
        state.viewer = null;
        viewerView.hidden = true;
        listView.hidden = false;
        services.setTitle("Message Center");
        focusRow(item, "Open");
      },
    });
  }

  for (const { code } of CATEGORIES) renderPanel(code);
  renderTabs();
  loadAll().then(() => schedule());

  return {
    close() {
      state.closed = true;
      clearTimeout(state.timer);
      for (const type of ["keydown", "pointerdown"]) document.removeEventListener(type, activity);
      state.viewer?.close();
    },
    /** The viewer open now (tests and the backplane), or null. */
    get viewer() {
      return state.viewer;
    },
  };
}
