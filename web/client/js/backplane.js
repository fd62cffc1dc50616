// The backplane (seed 001 Figures 3-4: COBackPlane): session, brand, applications.
//
// Theory of operation
// -------------------
// One Backplane object runs the page.  It keeps the session, presents the brand,
// launches, shows and closes applications inside the page (no reload; the URL hash
// names the screen, so Back and Forward work), and hands every application the
// session's services (servicesFor): messaging (send), the user context with its
// entitlements, the common objects -- time zone, language, currency ("the Report
// Requestor first asks for common objects for a user's default timezone, language
// and currency") -- pick lists, dialogs and navigation.
//
// * At start and after every logon it asks order entry for the user context
//   (``GUC<>``: profile, applications, products, report entitlements, defaults and
//   the brand of the user's enterprise); any live session may send it.  So a page
//   load with a live session cookie goes straight to the home page, and an
//   entitlement or brand changed by an administrator shows at the next page load.
// * A request that finds the session gone (HTTP 401) does not lose the screen: the
//   open applications are hidden, not closed, the logon page says why the session
//   ended, and once the same user has logged on again the request is sent again
//   and the application is shown as it was.  Another user logging on closes them.
// * Why a session ended: another window of this browser logged off or logged on as
//   someone else (a BroadcastChannel tells); the idle or absolute limit the logon
//   answer gave passed; otherwise the server ended it (logged off elsewhere, or an
//   administrator disabled the user).
//
// State flows one way: answers come in, the backplane updates its state and renders.

import { APPLICATIONS, applicationById, statusOf } from "./apps.js";
import { HOUSE_BRAND, applyBrand, brandOf } from "./brand.js";
import { confirmDialog, promptDialog } from "./dialog.js";
import { announce, h, replaceChildren } from "./dom.js";
import { HttpFailure, LogonRefused, SessionEnded, dispatch, logoff, logon } from "./transport.js";
import { renderHome } from "./views/home.js";
import { renderLogon } from "./views/logon.js";
import { errorOf, items, rows, text } from "./wire.js";

const STORE_KEY = "starwrs.session";
const CHANNEL = "starwrs-session";

function readStore() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY) ?? "null");
  } catch {
    return null;
  }
}

function writeStore(value) {
  try {
    if (value === null) sessionStorage.removeItem(STORE_KEY);
    else sessionStorage.setItem(STORE_KEY, JSON.stringify(value));
  } catch {
    // private mode without storage: reasons are less precise, nothing else changes
  }
}

/** The user context of a GUCA answer. */
function contextOf(message) {
  return {
    user: text(message.get("USERID")),
    entp: text(message.get("ENTPID")),
    userName: text(message.get("USERNAME")),
    apps: new Set(items(message.get("APPS"))),
    products: items(message.get("PRODUCTS")),
    corpIds: items(message.get("CORPIDS")),
    reports: items(message.get("REPORTS")),
    timezone: text(message.get("TIMEZONE")),
    lang: text(message.get("LANG")),
    curr: text(message.get("CURR")),
    brand: brandOf(message),
  };
}

class ContextRefused extends Error {}

/** ``90`` -> "90 seconds", ``900`` -> "15 minutes", ``43200`` -> "12 hours". */
function duration(seconds) {
  const plural = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (seconds < 120) return plural(Math.round(seconds), "second");
  if (seconds < 7200) return plural(Math.round(seconds / 60), "minute");
  return plural(Math.round(seconds / 3600), "hour");
}

export class Backplane {
  /** @param {Document} doc */
  constructor(doc) {
    this.doc = doc;
    this.el = {
      main: doc.getElementById("main"),
      logon: doc.getElementById("view-logon"),
      home: doc.getElementById("view-home"),
      apps: doc.getElementById("apps"),
      nav: doc.getElementById("app-nav"),
      user: doc.getElementById("user-box"),
    };
    this.context = null;
    this.brand = readStore()?.brand ?? HOUSE_BRAND;
    /** @type {Map<string, {app: any, container: HTMLElement, instance: any}>} */
    this.running = new Map();
    this.view = "logon";
    this.relogon = null;
    this.endedElsewhere = "";
    this.lastSuccess = Date.now();
    this.pickLists = new Map();
    this.common = null;
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;
  }

  async start() {
    applyBrand(this.brand);
    window.addEventListener("hashchange", () => this.route());
    if (this.channel) this.channel.onmessage = (event) => this.fromOtherWindow(event.data);
    const stored = readStore();
    try {
      await this.loadContext();
    } catch (err) {
      let reason = this.failureText(err);
      if (err instanceof SessionEnded) {
        reason = stored?.state === "on" ? this.reasonForEnd(stored) : "";
      }
      this.showLogon(reason);
      return;
    }
    this.route();
  }

  // -- the session -----------------------------------------------------------------

  async loadContext() {
    const answer = await dispatch("OE", "GUC<>");
    if (answer.status !== 0 || !answer.message) {
      throw new ContextRefused(`order entry refused the user context (${answer.status})`);
    }
    this.lastSuccess = Date.now();
    this.context = contextOf(answer.message);
    this.brand = this.context.brand;
    const stored = readStore() ?? {};
    writeStore({ ...stored, state: "on", user: this.context.user, brand: this.brand });
    applyBrand(this.brand, this.titleOfView());
    this.renderMasthead();
  }

  failureText(err) {
    if (err instanceof HttpFailure) return `The server could not be reached or refused: ${err.message}`;
    if (err instanceof ContextRefused) return "Your user context could not be loaded. Log on again.";
    return `Something went wrong: ${err.message}`;
  }

  reasonForEnd(stored = readStore()) {
    if (this.endedElsewhere) return this.endedElsewhere;
    const now = Date.now();
    const limits = stored?.limits;
    if (limits && now - this.lastSuccess >= limits.idle * 1000) {
      return `Your session ended after ${duration(limits.idle)} without activity. Log on again.`;
    }
    if (limits && stored.logonAt && now - stored.logonAt >= limits.absolute * 1000) {
      return `Your session reached its limit of ${duration(limits.absolute)}. Log on again.`;
    }
    return (
      "Your session has ended: it was logged off elsewhere or ended by an administrator. " +
      "Log on again to continue."
    );
  }

  showLogon(reason = "") {
    const keeping = this.relogon !== null && this.running.size > 0;
    const user = this.relogon?.user ?? this.context?.user ?? readStore()?.user ?? "";
    this.setView("logon");
    const form = renderLogon(this.el.logon, {
      reason,
      user,
      keepNote: keeping
        ? `Your work in ${[...this.running.values()].map((r) => r.app.name).join(", ")} is kept: ` +
          `log on again as ${user} to continue where you were.`
        : "",
      onSubmit: (who, password) => this.submitLogon(form, who, password),
    });
    form.focus();
  }

  async submitLogon(form, user, password) {
    form.busy(true);
    let answer;
    try {
      answer = await logon(user, password);
    } catch (err) {
      if (err instanceof LogonRefused) form.refuse(err.kind, err.retryAfter);
      else form.refuse("network");
      return;
    }
    writeStore({
      state: "on",
      user: answer.user,
      logonAt: Date.now(),
      limits: answer.session ?? null,
      brand: this.brand,
    });
    this.endedElsewhere = "";
    this.channel?.postMessage({ type: "logon", user: answer.user });
    const pending = this.relogon;
    this.relogon = null;
    const sameUser = pending !== null && pending.user === answer.user;
    if (!sameUser) this.closeAll();
    try {
      await this.loadContext();
    } catch (err) {
      pending?.reject(err);
      this.showLogon(this.failureText(err));
      return;
    }
    if (pending) {
      if (sameUser) {
        this.setView(pending.view);
        announce("Logged on again. Your work continues.");
        pending.resolve();
        return;
      }
      pending.reject(new SessionEnded("another user logged on"));
    }
    announce(`Logged on as ${answer.user}.`);
    this.route();
  }

  /** The session is gone: keep the screen, ask for a logon, resolve when it is back. */
  sessionEnded() {
    if (this.relogon === null) {
      let resolve;
      let reject;
      const promise = new Promise((res, rej) => {
        resolve = res;
        reject = rej;
      });
      const user = this.context?.user ?? readStore()?.user ?? "";
      const view = this.view === "logon" ? "home" : this.view;
      this.relogon = { promise, resolve, reject, user, view };
      this.showLogon(this.reasonForEnd());
    }
    return this.relogon.promise;
  }

  async doLogoff() {
    try {
      await logoff();
    } catch {
      // the cookie is cleared by the answer; a failed logoff still ends the page's session
    }
    this.closeAll();
    this.context = null;
    const stored = readStore();
    writeStore({ state: "off", brand: this.brand, user: stored?.user ?? "" });
    this.channel?.postMessage({ type: "logoff" });
    this.renderMasthead();
    history.replaceState(null, "", "#");
    this.showLogon("You have logged off.");
  }

  fromOtherWindow(data) {
    if (!data || !this.context) return;
    if (data.type === "logoff") {
      this.endedElsewhere = "You logged off in another window of this browser.";
    } else if (data.type === "logon" && data.user !== this.context.user) {
      this.endedElsewhere =
        `Another user (${data.user}) logged on in another window of this browser, ` +
        "which ended this window's session.";
    } else {
      return; // the same user logged on elsewhere: this window's requests go on
    }
    this.closeAll();
    this.context = null;
    this.renderMasthead();
    this.showLogon(this.endedElsewhere);
  }

  // -- messaging for the applications -----------------------------------------------

  /**
   * Send a message; a session that ended is logged on again (the screen kept) and
   * the message sent once more.
   */
  async send(target, message) {
    try {
      const answer = await dispatch(target, message);
      this.lastSuccess = Date.now();
      return answer;
    } catch (err) {
      if (!(err instanceof SessionEnded)) throw err;
    }
    await this.sessionEnded();
    const answer = await dispatch(target, message);
    this.lastSuccess = Date.now();
    return answer;
  }

  /** A pick list of the Report Manager (GPLA rows), kept for the session. */
  async pickList(request) {
    if (!this.pickLists.has(request)) {
      const pending = this.send("RM", request).then((answer) => {
        if (answer.status !== 0 || !answer.message) {
          this.pickLists.delete(request);
          return { error: answer.status || errorOf(answer.message) || 6101, rows: [] };
        }
        const list = answer.message.members.find((m) => m.key?.startsWith("PL_"));
        return { error: 0, rows: list ? rows(list.value) : [] };
      });
      pending.catch(() => this.pickLists.delete(request));
      this.pickLists.set(request, pending);
    }
    return this.pickLists.get(request);
  }

  /** The user's default time zone, language and currency, with their descriptions. */
  commonObjects() {
    if (!this.common) {
      const ctx = this.context;
      const describe = async (kind, code, index) => {
        if (!ctx.apps.has("RM")) return { code, description: code };
        const list = await this.pickList(`GPL<${kind}>`);
        const row = list.rows.find((r) => r[0] === code);
        return { code, description: row ? row[index] : code, row: row ?? null };
      };
      this.common = Promise.all([
        describe("PL_TIMEZONE", ctx.timezone, 2),
        describe("PL_LANG", ctx.lang, 1),
        describe("PL_CURR", ctx.curr, 1),
      ]).then(([timezone, lang, curr]) => ({ timezone, lang, curr }));
      this.common.catch(() => {
        this.common = null;
      });
    }
    return this.common;
  }

  servicesFor(app) {
    const ctx = this.context;
    return Object.freeze({
      user: ctx.user,
      entp: ctx.entp,
      context: ctx,
      send: (target, message) => this.send(target, message),
      pickList: (request) => this.pickList(request),
      commonObjects: () => this.commonObjects(),
      announce,
      confirm: confirmDialog,
      prompt: promptDialog,
      setTitle: (title) => applyBrand(this.brand, title),
      close: () => this.closeApp(app.id),
      home: () => this.navigate("#home"),
    });
  }

  // -- applications and navigation ---------------------------------------------------

  navigate(hash) {
    if (location.hash === hash) this.route();
    else location.hash = hash;
  }

  route() {
    if (!this.context || this.relogon) return;
    const hash = location.hash;
    const match = /^#app\/([a-z]+)$/.exec(hash);
    if (match) {
      const app = applicationById(match[1]);
      if (app && statusOf(app, this.context.apps) === "available") {
        this.launchApp(app.id);
        return;
      }
    }
    if (hash !== "#home") history.replaceState(null, "", "#home");
    this.showHome();
  }

  showHome() {
    this.setView("home");
    const ctx = this.context;
    const common = `Time zone ${ctx.timezone || "-"}, language ${ctx.lang || "-"}, currency ${ctx.curr || "-"}`;
    renderHome(this.el.home, {
      user: ctx.user,
      userName: ctx.userName,
      enterprise: ctx.entp,
      brandName: this.brand.name,
      apps: ctx.apps,
      products: ctx.products,
      common,
      onLaunch: (id) => this.navigate(`#app/${id}`),
    });
    this.el.home.querySelector("h1")?.focus();
    if (ctx.apps.has("RM")) {
      this.commonObjects()
        .then(({ timezone, lang, curr }) => {
          const dd = this.el.home.querySelector(".facts dd:last-of-type");
          if (dd) {
            dd.textContent = `Time zone ${timezone.description}; ${lang.description}; ${curr.description}`;
          }
        })
        .catch(() => {});
    }
  }

  /** Launch (or show again) the application *id* (COBackPlane.launchApp). */
  async launchApp(id) {
    const app = applicationById(id);
    let entry = this.running.get(id);
    if (!entry) {
      const container = h("section", { class: "app", dataset: { app: id }, "aria-label": app.name });
      this.el.apps.append(container);
      entry = { app, container, instance: null };
      this.running.set(id, entry);
      try {
        const module = await app.load();
        entry.instance = module.start(container, this.servicesFor(app));
      } catch (err) {
        if (err instanceof SessionEnded) return; // another user logged on meanwhile
        replaceChildren(
          container,
          h("h1", { tabindex: "-1", text: app.name }),
          h("p", { class: "message error", role: "alert", text: `${app.name} could not start: ${err.message}` }),
        );
      }
    }
    this.setView(`app:${id}`);
    for (const [other, { container }] of this.running) container.hidden = other !== id;
    applyBrand(this.brand, app.name);
    entry.container.querySelector("h1")?.focus();
  }

  /** Close the application *id* (COBackPlane: "launching and closing the COApps"). */
  closeApp(id) {
    const entry = this.running.get(id);
    if (!entry) return;
    try {
      entry.instance?.close?.();
    } finally {
      entry.container.remove();
      this.running.delete(id);
    }
    if (this.view === `app:${id}`) this.navigate("#home");
    else this.renderMasthead();
  }

  /** The application object named *id*, for inter-application use (COBackPlane.getApp). */
  getApp(id) {
    return this.running.get(id)?.instance ?? null;
  }

  closeAll() {
    for (const id of [...this.running.keys()]) {
      const entry = this.running.get(id);
      try {
        entry.instance?.close?.();
      } catch {
        // an application failing to close must not keep the others open
      }
      entry.container.remove();
      this.running.delete(id);
    }
    this.pickLists.clear();
    this.common = null;
  }

  titleOfView() {
    if (this.view === "home") return "Home";
    if (this.view.startsWith("app:")) return applicationById(this.view.slice(4))?.name ?? "";
    return "Log on";
  }

  setView(view) {
    this.view = view;
    this.el.logon.hidden = view !== "logon";
    this.el.home.hidden = view !== "home";
    this.el.apps.hidden = !view.startsWith("app:");
    applyBrand(this.brand, this.titleOfView());
    this.renderMasthead();
  }

  renderMasthead() {
    const ctx = this.context;
    const signedIn = ctx !== null && this.view !== "logon";
    const links = [];
    if (signedIn) {
      const current = (view) => (this.view === view ? "page" : null);
      links.push(h("li", null, h("a", { href: "#home", "aria-current": current("home"), text: "Home" })));
      for (const { app } of this.running.values()) {
        links.push(
          h(
            "li",
            null,
            h("a", { href: `#app/${app.id}`, "aria-current": current(`app:${app.id}`), text: app.name }),
          ),
        );
      }
    }
    replaceChildren(this.el.nav, signedIn ? h("ul", null, links) : null);
    this.el.nav.hidden = !signedIn;
    replaceChildren(
      this.el.user,
      signedIn
        ? [
            h("span", { class: "who", text: ctx.user }),
            h("button", { type: "button", class: "quiet", text: "Log off", onclick: () => this.doLogoff() }),
          ]
        : null,
    );
  }
}

/** Every application the backplane knows (for tests and the home page). */
export { APPLICATIONS };
