/* tunehub dashboard: helpers shared by the pages, and the SVG trend chart.
   Plain browser JavaScript, no library, nothing loaded from another host. */
"use strict";

const TH = {};

/* An element: el("td", {class: "num"}, "text", child...). Text is always text, never HTML. */
TH.el = function (tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

/* Text for SVG markup. */
TH.esc = function (text) {
  return String(text).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
};

/* A JSON call to the server; a failure throws an Error with the server's message and status. */
TH.api = async function (path, options) {
  const init = {credentials: "same-origin", headers: {"Accept": "application/json"}};
  if (options && options.body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.headers["X-Tunehub-Dashboard"] = "1";
    init.body = JSON.stringify(options.body);
  }
  const answer = await fetch(path, init);
  let data = null;
  try { data = await answer.json(); } catch (e) { data = null; }
  if (!answer.ok) {
    let detail = data && data.detail;
    if (Array.isArray(detail)) detail = detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    const error = new Error(detail || `${answer.status} ${answer.statusText}`);
    error.status = answer.status;
    throw error;
  }
  return data;
};

TH.fmt = function (value, digits) {
  if (value === null || value === undefined || value === "") return "";
  if (typeof value === "number") return value.toFixed(digits === undefined ? 3 : digits);
  return String(value);
};

/* A time in UTC as "2024-03-11 09:00" (seconds since 1970 or ISO text). */
TH.when = function (value) {
  if (value === null || value === undefined || value === "") return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (isNaN(date)) return String(value);
  return date.toISOString().slice(0, 16).replace("T", " ");
};

TH.say = function (node, text, kind) {
  node.textContent = text || "";
  node.className = "status" + (kind ? " " + kind : "");
};

TH.params = () => new URLSearchParams(location.search);

/* Keep the page's filters in its address, so a reload or a shared link shows the same view. */
TH.remember = function (values) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value) query.set(key, value);
  const text = query.toString();
  history.replaceState(null, "", location.pathname + (text ? "?" + text : ""));
};

/* The header's sign-in state; resolves to the session ({key_set, signed_in, can_write, ...}). */
TH.session = async function () {
  const box = document.getElementById("session");
  let info;
  try { info = await TH.api("/ui/api/session"); } catch (e) { return {can_write: false}; }
  if (box) {
    box.replaceChildren();
    if (info.key_set && info.signed_in) {
      const form = TH.el("form", {method: "post", action: "/ui/logout"},
        TH.el("button", {type: "submit", class: "link"}, "Sign out"));
      box.append(TH.el("span", {}, "Signed in"), form);
    } else if (info.key_set) {
      const next = encodeURIComponent(location.pathname + location.search);
      box.append(TH.el("a", {href: `/ui/login?next=${next}`}, "Sign in with the API key"));
    } else {
      box.append(TH.el("span", {class: "small"}, "No API key set"));
    }
  }
  TH.current = info;
  return info;
};

TH.signInHint = function () {
  const next = encodeURIComponent(location.pathname + location.search);
  return TH.el("span", {}, " ", TH.el("a", {href: `/ui/login?next=${next}`}, "Sign in with the API key"), " to do this.");
};

/* Fill a <select> with [value, text] pairs, keeping `chosen` when it is one of them. */
TH.options = function (select, pairs, chosen) {
  select.replaceChildren(...pairs.map(([value, text]) => TH.el("option", {value}, text)));
  if (chosen !== undefined && pairs.some(([value]) => String(value) === String(chosen))) select.value = String(chosen);
};

/* ---- the trend chart (SVG markup, drawn from numbers; every text escaped) ---------------- */

/* windows: [[start, end, volume, negative, positive, alerted], ...] (seconds since 1970);
   width: the chart's width on screen (its text keeps its size);
   measure: "negative" (negative share, 0..1) or "net" (positive - negative share, -1..1). */
TH.chart = function (entity, windows, measure, span, width) {
  const W = Math.round(Math.max(320, Math.min(960, width || 640))), H = 250, left = 44, right = 12, top = 14, trendH = 150, gap = 22, volH = 50;
  const x0 = span[0], x1 = Math.max(span[1], span[0] + 1);
  const x = (t) => left + (t - x0) / (x1 - x0) * (W - left - right);
  const [lo, hi] = measure === "net" ? [-1, 1] : [0, 1];
  const y = (v) => top + (hi - v) / (hi - lo) * trendH;
  const value = (w) => {
    const share = (n) => (w[2] ? n / w[2] : 0);
    return measure === "net" ? share(w[4]) - share(w[3]) : share(w[3]);
  };
  const maxVolume = Math.max(1, ...windows.map((w) => w[2]));
  const volTop = top + trendH + gap;
  const parts = [];
  const ticks = measure === "net" ? [-1, -0.5, 0, 0.5, 1] : [0, 0.25, 0.5, 0.75, 1];
  for (const t of ticks) {
    parts.push(`<line class="grid${t === 0 && measure === "net" ? " zero" : ""}" x1="${left}" x2="${W - right}" y1="${y(t)}" y2="${y(t)}"/>`);
    parts.push(`<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${t.toFixed(2)}</text>`);
  }
  const times = TH.timeTicks(x0, x1, Math.max(2, Math.floor((W - left - right) / 95)));  /* labels never overlap */
  for (const t of times) {
    parts.push(`<line class="grid" x1="${x(t)}" x2="${x(t)}" y1="${top}" y2="${volTop + volH}"/>`);
    parts.push(`<text x="${x(t)}" y="${H - 2}" text-anchor="middle">${TH.esc(TH.when(t).slice(0, x1 - x0 > 3 * 86400 ? 10 : 16))}</text>`);
  }
  parts.push(`<text x="${left - 6}" y="${volTop + 10}" text-anchor="end">${TH.esc(maxVolume)}</text>`);
  parts.push(`<text x="${left - 6}" y="${volTop + volH}" text-anchor="end">0</text>`);
  const bars = windows.map((w) => {
    const bx = x(w[0]), bw = Math.max(1, x(w[1]) - x(w[0]) - 1), bh = w[2] / maxVolume * volH;
    return `<rect x="${bx.toFixed(1)}" y="${(volTop + volH - bh).toFixed(1)}" width="${bw.toFixed(1)}" height="${bh.toFixed(1)}"><title>${TH.esc(`${TH.when(w[0])}: ${w[2]} rows`)}</title></rect>`;
  });
  parts.push(`<g class="bars">${bars.join("")}</g>`);
  const mid = (w) => (x(w[0]) + x(w[1])) / 2;
  const path = windows.map((w, i) => `${i ? "L" : "M"}${mid(w).toFixed(1)},${y(value(w)).toFixed(1)}`).join("");
  if (windows.length) parts.push(`<path class="trend" d="${path}"/>`);
  windows.forEach((w, i) => {
    if (!w[5]) return;
    const label = `Alert: ${entity}, window from ${TH.when(w[0])}: negative share ${(w[2] ? w[3] / w[2] : 0).toFixed(2)} of ${w[2]} rows`;
    parts.push(`<circle class="alert-mark" data-entity="${TH.esc(entity)}" data-start="${w[0]}" cx="${mid(w).toFixed(1)}" cy="${y(value(w)).toFixed(1)}" r="7" tabindex="0" role="button" aria-label="${TH.esc(label)}"><title>${TH.esc(label)}</title></circle>`);
  });
  const title = `${measure === "net" ? "Net sentiment" : "Negative share"} and volume of ${entity}`;
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${TH.esc(title)}"><title>${TH.esc(title)}</title>${parts.join("")}</svg>`;
};

/* About `count` round times between t0 and t1 (seconds). */
TH.timeTicks = function (t0, t1, count) {
  const steps = [60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 2 * 86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 91 * 86400, 365 * 86400];
  const step = steps.find((s) => (t1 - t0) / s <= count) || steps[steps.length - 1];
  const out = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
  return out;
};

document.addEventListener("DOMContentLoaded", () => { TH.ready = TH.session(); });
