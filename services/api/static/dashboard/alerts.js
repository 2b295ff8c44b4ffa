// The overview's budget alerts panel: thresholds crossed, newest first. A tenant key reads its
// own (GET /v1/alerts); the admin key every tenant's or the chosen one's (GET /v1/admin/alerts).
// It loads each time the overview has (the "dash:ready" event), for the same key and tenant.
"use strict";

(() => {
  const D = Dash;
  const LIMIT = 20;

  function threshold(alert) {
    return D.el(
      "span",
      { class: `status threshold-${alert.threshold}` },
      `${alert.threshold} · ${D.percent(Number(alert.ratio), 0)}`,
    );
  }

  // Where the webhook went: a tenant sees its own alert URL's; the operator both.
  function delivery(alert, operator) {
    const tenant = alert.delivery || "no alert URL";
    if (!operator) return tenant;
    return `tenant: ${tenant} · operator: ${alert.operator_delivery || "no operator URL"}`;
  }

  function render(alerts, operator) {
    const table = D.byId("alerts-table");
    const note = D.byId("alerts-note");
    D.byId("alerts-tenant-head").hidden = !operator;
    table.hidden = alerts.length === 0;
    note.hidden = alerts.length > 0;
    note.textContent = "No budget alerts: no threshold crossed yet.";
    D.rows(
      table.querySelector("tbody"),
      alerts.map((alert) =>
        D.el(
          "tr",
          {},
          D.el("td", {}, D.utc(alert.created_at)),
          ...(operator ? [D.el("td", {}, alert.tenant_name)] : []),
          D.el("td", {}, alert.key_prefix ? `${alert.period} · key ${alert.key_prefix}` : alert.period),
          D.el("td", {}, threshold(alert)),
          D.el("td", { class: "num" }, `${D.money(alert.spent)} of ${D.money(alert.cap)}`),
          D.el("td", {}, delivery(alert, operator)),
        ),
      ),
    );
  }

  async function load(event) {
    const { operator, tenantId } = event.detail;
    const card = D.byId("card-alerts");
    card.dataset.state = "loading";
    try {
      const page = operator
        ? await D.api("/v1/admin/alerts", { tenant_id: tenantId, limit: LIMIT })
        : await D.api("/v1/alerts", { limit: LIMIT });
      render(page.data, operator);
    } catch (error) {
      D.byId("alerts-table").hidden = true;
      D.byId("alerts-note").hidden = false;
      D.text("alerts-note", `Could not load the budget alerts: ${error.message}`);
    }
    card.dataset.state = "ready";
  }

  document.addEventListener("dash:ready", load);
})();
