// Presenting a brand: the masthead's name and logo, the colours, the legal line.
//
// Theory of operation
// -------------------
// Seed 002 claim 92: the backplane "manages one or more company brands" so that a
// reseller's customers see the reseller.  The brand comes from order entry in the
// user context (GUCA: BRANDID, BRANDNAME, COLOR, ACCENT, LEGAL, LOGO = its SHA-256);
// applyBrand() shows it:
//
// * the name and the legal line go in with textContent;
// * the colours are used only as CSS custom properties (--brand, --on-brand,
//   --accent), and only when they are #rrggbb: any other text is ignored, so a brand
//   cannot reach the style sheet's syntax.  The text colour on the masthead is black
//   or white, whichever contrasts more; the accent is darkened until it reaches 4.5:1
//   on white (WCAG 2.1 AA for text), whatever colour the reseller chose;
// * the logo is an <img> of /brand/logo?v=<sha256> (the web tier serves it after
//   checking it is a raster image), with an empty alt: the name beside it says it.
//
// Before logon (and for enterprises without a brand) the house brand is shown.

import { text } from "./wire.js";

/** the house brand (order entry's HOUSE_BRAND) */
export const HOUSE_BRAND = Object.freeze({
  id: "starwrs",
  name: "starwrs",
  color: "#1f4e79",
  accent: "#b3541e",
  legal: "starwrs secure web reporting. Call detail data is confidential to your enterprise.",
  logo: null,
});

const HEX = /^#[0-9a-fA-F]{6}$/;

function channels(hex) {
  return [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
}

function luminance(hex) {
  const [r, g, b] = channels(hex).map((c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** The WCAG contrast ratio of two #rrggbb colours (1 to 21). */
export function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** Black or white text, whichever reads better on *background*. */
export function textOn(background) {
  return contrast(background, "#ffffff") >= contrast(background, "#111111") ? "#ffffff" : "#111111";
}

/** *color* darkened (in steps of 5 %) until it has 4.5:1 against *background*. */
export function readable(color, background = "#ffffff") {
  let [r, g, b] = channels(color);
  const hex = () => `#${[r, g, b].map((c) => Math.round(c).toString(16).padStart(2, "0")).join("")}`;
  for (let i = 0; i < 40 && contrast(hex(), background) < 4.5; i++) {
    [r, g, b] = [r * 0.95, g * 0.95, b * 0.95];
  }
  return hex();
}

/** The brand in a GUCA answer (the house brand's values where it gives none or bad ones). */
export function brandOf(context) {
  const pick = (key, fallback) => {
    const value = text(context.get(key));
    return value || fallback;
  };
  const color = pick("COLOR", HOUSE_BRAND.color);
  const accent = pick("ACCENT", HOUSE_BRAND.accent);
  return {
    id: pick("BRANDID", HOUSE_BRAND.id),
    name: pick("BRANDNAME", HOUSE_BRAND.name),
    color: HEX.test(color) ? color : HOUSE_BRAND.color,
    accent: HEX.test(accent) ? accent : HOUSE_BRAND.accent,
    legal: pick("LEGAL", ""),
    logo: /^[0-9a-f]{64}$/.test(pick("LOGO", "")) ? pick("LOGO", "") : null,
  };
}

/**
 * Show *brand* in the page's masthead and footer.
 * @param {{id: string, name: string, color: string, accent: string, legal: string,
 *          logo: string | null}} brand
 * @param {string} [title] the current screen's title, for document.title
 */
export function applyBrand(brand, title = "") {
  const root = document.documentElement;
  const color = HEX.test(brand.color) ? brand.color : HOUSE_BRAND.color;
  const accent = HEX.test(brand.accent) ? brand.accent : HOUSE_BRAND.accent;
  root.style.setProperty("--brand", color);
  root.style.setProperty("--on-brand", textOn(color));
  root.style.setProperty("--accent", readable(accent));
  root.dataset.brand = brand.id;
  const name = document.getElementById("brand-name");
  if (name) name.textContent = brand.name;
  const legal = document.getElementById("brand-legal");
  if (legal) legal.textContent = brand.legal || HOUSE_BRAND.legal;
  const logo = document.getElementById("brand-logo");
  if (logo instanceof HTMLImageElement) {
    if (brand.logo) {
      logo.src = `/brand/logo?v=${brand.logo}`;
      logo.hidden = false;
    } else if (brand.id === HOUSE_BRAND.id) {
      logo.src = "/img/starwrs.svg";
      logo.hidden = false;
    } else {
      logo.removeAttribute("src"); // a reseller without a logo shows its name only
      logo.hidden = true;
    }
  }
  document.title = title ? `${title} – ${brand.name}` : brand.name;
}
