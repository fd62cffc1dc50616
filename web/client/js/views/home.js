// The backplane's home page (seed 001 Figures 4-5): the applications, as buttons.
//
// Theory of operation
// -------------------
// One button per application of apps.js.  The ones the user may run (their
// entitlements: the APPS of the user context, frame targets) are enabled; the
// others are visibly not -- dimmed, aria-disabled, and saying why: "Not entitled"
// or "Not available yet" (an application still to be built).  The seed: "the icons
// for applications the user has security access to are shown bolded".  Below, the
// user's products and defaults (the common objects every application gets).

import { APPLICATIONS, statusOf } from "../apps.js";
import { h, replaceChildren, uid } from "../dom.js";

export const PRODUCT_NAMES = {
  V: "Vnet",
  C: "CVNS",
  S: "Vision",
  T: "Toll Free",
  H: "Broadband",
};

const STATUS_TEXT = {
  available: "Available",
  "not-entitled": "Not entitled: ask your administrator",
  "not-available": "Not available yet",
};

/**
 * Build the home page into *container*.
 * @param {HTMLElement} container
 * @param {{user: string, userName: string, enterprise: string, brandName: string,
 *          apps: Set<string>, products: string[], common: string,
 *          onLaunch: (id: string) => void}} model
 */
export function renderHome(container, model) {
  const headingId = uid("home-heading");
  const tiles = APPLICATIONS.map((app) => {
    const status = statusOf(app, model.apps);
    const entitled = app.target !== null && model.apps.has(app.target);
    const statusId = uid("app-status");
    const descId = uid("app-desc");
    let note = STATUS_TEXT[status];
    if (status === "not-available" && app.target !== null) {
      note = entitled
        ? "Not available yet (you are entitled to it)"
        : "Not available yet; you are not entitled to it";
    }
    const button = h(
      "button",
      {
        type: "button",
        class: "app-button",
        "aria-disabled": status === "available" ? null : "true",
        "aria-describedby": `${descId} ${statusId}`,
        dataset: { app: app.id, status },
        onclick: () => {
          if (status === "available") model.onLaunch(app.id);
        },
      },
      h("span", { class: "app-icon", "aria-hidden": "true", text: app.name.slice(0, 1) }),
      h("span", { class: "app-name", text: app.name }),
    );
    return h(
      "li",
      { class: `app-tile ${status}` },
      button,
      h("p", { id: descId, class: "app-desc", text: app.description }),
      h("p", { id: statusId, class: "app-status", text: note }),
    );
  });
  const products = model.products.map((p) => PRODUCT_NAMES[p] ?? p);
  replaceChildren(
    container,
    h(
      "section",
      { class: "home", "aria-labelledby": headingId },
      h("h1", { id: headingId, tabindex: "-1", text: `Welcome to ${model.brandName}` }),
      h(
        "p",
        { class: "lead" },
        `Logged on as ${model.userName || model.user} (${model.user}), enterprise ${model.enterprise}.`,
      ),
      h("h2", { text: "Your applications" }),
      h("ul", { class: "app-grid" }, tiles),
      h("h2", { text: "Your entitlements and defaults" }),
      h(
        "dl",
        { class: "facts" },
        h("dt", { text: "Products" }),
        h("dd", { text: products.length ? products.join(", ") : "none" }),
        h("dt", { text: "Defaults" }),
        h("dd", { text: model.common }),
      ),
    ),
  );
}
