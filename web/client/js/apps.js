// The applications the backplane knows (seed 001 Figure 5: the home page's suite).
//
// Theory of operation
// -------------------
// Each application is reached through one frame target -- the service whose
// entitlement it needs (``RM`` for the Report Requestor, ``INBX`` for the Message
// Center) -- and is loaded on first launch with a dynamic import, so the home page
// costs nothing for applications not used.  An application without ``load`` does
// not exist yet: the home page lists it as not available (entitled or not).
//
// An application module exports ``start(container, services)`` returning
// ``{close()}``; ``services`` is what the backplane hands every application
// (backplane.js).

/**
 * @typedef {{id: string, name: string, target: string | null, description: string,
 *            load?: () => Promise<any>}} Application
 */

/** @type {Application[]} */
export const APPLICATIONS = [
  {
    id: "requestor",
    name: "Report Requestor",
    target: "RM",
    description: "Create, customize, save, schedule and run reports on your call detail data.",
    load: () => import("./requestor/index.js"),
  },
  {
    id: "messages",
    name: "Message Center",
    target: "INBX",
    description: "Your completed reports and notifications.",
    load: () => import("./inbox/index.js"),
  },
  {
    id: "orders",
    name: "Order Entry",
    target: "OE",
    description: "Users, services and their entitlements.",
  },
  {
    id: "traffic",
    name: "Traffic Monitor",
    target: null,
    description: "Network traffic as it happens.",
  },
  { id: "alarms", name: "Alarm Monitor", target: null, description: "Alarms on your network." },
  {
    id: "network",
    name: "Network Manager",
    target: null,
    description: "Routing of your switched traffic.",
  },
  {
    id: "routing",
    name: "Intelligent Routing",
    target: null,
    description: "Routing plans for your toll free numbers.",
  },
];

/**
 * Whether the user may launch *app*: "available", "not-entitled" or "not-available".
 * @param {Application} app
 * @param {Set<string>} entitled the user's frame targets (APPS of the user context)
 */
export function statusOf(app, entitled) {
  if (!app.load) return "not-available";
  return app.target && entitled.has(app.target) ? "available" : "not-entitled";
}

/** The application with id *id*, or undefined. */
export function applicationById(id) {
  return APPLICATIONS.find((app) => app.id === id);
}
