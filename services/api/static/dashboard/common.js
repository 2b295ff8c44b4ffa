// Shared by the dashboard pages: the header and key form, the key, calls to the JSON API,
// formatting, DOM and charts.
// Everything from the API is inserted as text (never as HTML): job questions and answers are
// the tenant's own free text.
"use strict";

const Dash = (() => {
  const KEY_NAME = "tandem.dashboard.key";
  // Tenant keys are "tdm_<prefix>_<secret>" (shared/tenants/service.py); any other key is the
  // operator's admin key. Deciding by the shape avoids a probing request that would fail.
  const TENANT_KEY_PREFIX = "tdm_";

  const key = () => sessionStorage.getItem(KEY_NAME);
  const setKey = (value) => sessionStorage.setItem(KEY_NAME, value);
  const clearKey = () => sessionStorage.removeItem(KEY_NAME);
  const isOperator = () => !(key() || "").startsWith(TENANT_KEY_PREFIX);

  class ApiError extends Error {
    constructor(status, message, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // GET a JSON API path; params with null/undefined/"" values are left out.
  async function api(path, params = {}) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
    }
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${key()}`, Accept: "application/json" },
      cache: "no-store",
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const error = body && body.error;
      throw new ApiError(
        response.status,
        error ? error.message : `${response.status} ${response.statusText}`,
        error ? error.code : "http_error",
      );
    }
    return body;
  }

  // "1.5E-7" -> "0.00000015", exactly (Python's Decimal writes zero as "0E-12").
  function plain(text) {
    const match = /^(\d*)(?:\.(\d*))?[eE]([+-]?\d+)$/.exec(text);
    if (!match) return text;
    const [, whole, fraction = ""] = match;
    const digits = whole + fraction;
    const point = whole.length + Number(match[3]);
    if (point <= 0) return `0.${"0".repeat(-point)}${digits}`;
    if (point >= digits.length) return digits + "0".repeat(point - digits.length);
    return `${digits.slice(0, point)}.${digits.slice(point)}`;
  }

  // Money arrives as an exact decimal string: trim it, never round it through a float.
  function money(value) {
    if (value === null || value === undefined) return "–";
    let text = String(value).trim();
    const negative = text.startsWith("-");
    if (negative) text = text.slice(1);
    let [whole, fraction = ""] = plain(text).split(".");
    whole = whole.replace(/^0+(?=\d)/, "") || "0";
    fraction = fraction.replace(/0+$/, "");
    if (fraction.length < 2) fraction = fraction.padEnd(2, "0");
    whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return `${negative ? "-" : ""}$${whole}.${fraction}`;
  }

  const integer = (value) => (value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US"));

  function percent(ratio, digits = 1) {
    return ratio === null || ratio === undefined ? "–" : `${(ratio * 100).toFixed(digits)}%`;
  }

  function duration(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 120000) return `${(ms / 1000).toFixed(2)} s`;
    return `${(ms / 60000).toFixed(1)} min`;
  }

  // FLOPs are integer strings far beyond 2^53: show them in engineering units.
  function flops(value) {
    const n = Number(value);
    if (!Number.isFinite(n)) return "–";
    const units = [[1e18, "E"], [1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [size, unit] of units) if (n >= size) return `${(n / size).toFixed(2)} ${unit}FLOPs`;
    return `${n} FLOPs`;
  }

  // ISO 8601 -> "2026-11-28 14:03:07" in UTC, the API's time zone.
  const utc = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "–");

  const byId = (id) => document.getElementById(id);

  function text(id, value) {
    byId(id).textContent = value;
  }

  // el("td", {class: "num"}, "text", otherNode): children are text or nodes, never HTML.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value !== null && value !== undefined) node.setAttribute(name, value);
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function rows(tbody, list) {
    tbody.replaceChildren(...list);
  }

  function statusBadge(status) {
    return el("span", { class: `status status-${status}` }, status);
  }

  function showError(message) {
    const banner = byId("error");
    banner.textContent = message;
    banner.hidden = false;
    document.body.dataset.state = "error";
  }

  function hideError() {
    byId("error").hidden = true;
  }

  // One colour per role and per status everywhere, so charts read alike.
  const COLORS = {
    coordinator: "#3b6fd8",
    scorer: "#e0a526",
    executor: "#2f9e6f",
    succeeded: "#2f9e6f",
    failed: "#d64545",
    cancelled: "#8a8f98",
    rejected: "#b05fc4",
    queued: "#9bb7ea",
    coordinating: "#3b6fd8",
    scoring: "#e0a526",
    executing: "#47b9c9",
    settling: "#6c7fd8",
  };
  const PALETTE = ["#3b6fd8", "#2f9e6f", "#e0a526", "#d64545", "#b05fc4", "#47b9c9", "#8a8f98",
    "#e07b39", "#6c7fd8", "#7aa84a"];
  const color = (name, index) => COLORS[name] || PALETTE[index % PALETTE.length];

  // Draw (or redraw) a chart on a canvas. No animation: the figure is final when drawn, which
  // is what a reader, a screenshot and a test should see.
  function chart(canvasId, config) {
    const canvas = byId(canvasId);
    const existing = window.Chart.getChart(canvas);
    if (existing) existing.destroy();
    const options = config.options || {};
    return new window.Chart(canvas, {
      ...config,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        ...options,
        plugins: { legend: { position: "bottom" }, ...(options.plugins || {}) },
      },
    });
  }

  // Chart values are floats: show them as money to 10 decimals (the ledger keeps 12).
  const moneyOf = (number, decimals = 10) => money(Number(number).toFixed(decimals));
  const valueOf = (ctx) => (ctx.chart.options.indexAxis === "y" ? ctx.parsed.x : ctx.parsed.y);
  const moneyTicks = { callback: (value) => moneyOf(value, 6) };
  const moneyTooltip = {
    callbacks: { label: (ctx) => `${ctx.dataset.label}: ${moneyOf(valueOf(ctx))}` },
  };

  function signOut() {
    clearKey();
    window.location.assign("/dashboard");
  }

  // What every page has around its own parts, written once here: the title (a link home except
  // on the overview) and Sign out in the header, the key form and the error banner. This script
  // runs before each page's own (deferred scripts run in order), so that one finds them in place.
  // A page gives its form's heading and help text as the children of <section id="login">.
  function frame() {
    const header = document.querySelector("header.topbar");
    const title = ["Tandem serve ", el("span", { class: "muted" }, "dashboard")];
    const home = window.location.pathname === "/dashboard";
    header.prepend(el("h1", {}, ...(home ? title : [el("a", { href: "/dashboard" }, ...title)])));
    header
      .querySelector(".who")
      .append(el("button", { type: "button", id: "sign-out", class: "link" }, "Sign out"));
    const login = byId("login");
    login.replaceChildren(
      el(
        "form",
        { id: "login-form" },
        ...login.children,
        el("label", { for: "key" }, "API key"),
        el("input", {
          type: "password", id: "key", autocomplete: "off", spellcheck: "false", required: "",
        }),
        el("button", { type: "submit", id: "open" }, "Open"),
        el("p", { class: "error", id: "login-error", hidden: "" }),
      ),
    );
    login.after(el("p", { class: "error banner", id: "error", hidden: "" }));
  }

  frame();

  return {
    ApiError, api, byId, chart, clearKey, color, duration, el, flops, hideError, integer,
    isOperator, key, money, moneyOf, moneyTicks, moneyTooltip, percent, rows, setKey, showError,
    signOut, statusBadge, text, utc,
  };
})();
