// The browser client's entry point: one Backplane runs the page (backplane.js).
//
// Loaded as a module from index.html (no inline script: the Content-Security-Policy
// allows scripts from this origin only, and no eval).

import { Backplane } from "./backplane.js";

const backplane = new Backplane(document);
backplane.start().catch((err) => {
  const live = document.getElementById("live");
  if (live) live.textContent = `The client could not start: ${err.message}`;
  throw err;
});
