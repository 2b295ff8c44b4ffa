// The overview's API keys panel: each key's spend in its current period against its own cap.
// A tenant key reads its tenant's keys (GET /v1/keys); the admin key the chosen tenant's
// (GET /v1/admin/tenants/{id}/keys); with every tenant shown, it asks for one to be chosen.
// It loads each time the overview has (the "dash:ready" event), for the same key and tenant.
"use strict";

(() => {
  const D = Dash;

  function state(key) {
    if (key.revoked_at) return "revoked";
    if (key.expires_at && new Date(key.expires_at) <= new Date()) return "expired";
    return "active";
  }

  // Spent (and held) against the key's own cap; a key without one is bounded by its tenant's.
  function used(spend) {
    if (spend.cap === null) return "no cap of its own";
    const cap = Number(spend.cap);
    return cap > 0 ? D.percent(Number(spend.spent) / cap) : "–";
  }

  function render(keys) {
    const table = D.byId("keys-table");
    const note = D.byId("keys-note");
    table.hidden = keys.length === 0;
    note.hidden = keys.length > 0;
    note.textContent = "No API keys.";
    D.rows(
      table.querySelector("tbody"),
      keys.map((key) => {
        const spend = key.spend;
        const full = spend.cap !== null && Number(spend.spent) + Number(spend.reserved) >= Number(spend.cap);
        return D.el(
          "tr",
          { class: full ? "alert" : null },
          D.el("td", {}, D.el("code", {}, key.prefix), key.name ? ` ${key.name}` : ""),
          D.el("td", {}, D.el("span", { class: `status key-${state(key)}` }, state(key))),
          D.el("td", {}, spend.period),
          D.el("td", { class: "num" }, D.money(spend.spent)),
          D.el("td", { class: "num" }, D.money(spend.reserved)),
          D.el("td", { class: "num" }, spend.cap === null ? "–" : D.money(spend.cap)),
          D.el("td", { class: "num" }, used(spend)),
          D.el("td", { class: "num" }, key.rate_limit_rpm === null ? "–" : D.integer(key.rate_limit_rpm)),
          D.el("td", {}, key.expires_at ? D.utc(key.expires_at) : "never"),
        );
      }),
    );
  }

  async function load(event) {
    const { operator, tenantId } = event.detail;
    const card = D.byId("card-keys");
    card.dataset.state = "loading";
    const note = D.byId("keys-note");
    try {
      if (operator && !tenantId) {
        D.byId("keys-table").hidden = true;
        note.hidden = false;
        note.textContent = "Choose a tenant to see its API keys.";
      } else {
        render(await D.api(operator ? `/v1/admin/tenants/${tenantId}/keys` : "/v1/keys"));
      }
    } catch (error) {
      D.byId("keys-table").hidden = true;
      note.hidden = false;
      note.textContent = `Could not load the API keys: ${error.message}`;
    }
    card.dataset.state = "ready";
  }

  document.addEventListener("dash:ready", load);
})();
