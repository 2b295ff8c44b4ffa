// The overview page: budget, cost, savings, truncation, jobs, top tenants and recent jobs.
// A tenant key sees its own tenant; the admin key sees every tenant (or one, chosen above).
"use strict";

(() => {
  const D = Dash;
  const ROLES = ["coordinator", "scorer", "executor"];
  const TOP_TENANTS = 10;
  const RECENT_JOBS = 15;
  let tenants = null; // operator only: GET /v1/admin/tenants, for names and budgets

  const sumBy = (rows, field) => rows.reduce((total, row) => total + Number(row[field] || 0), 0);
  const tenantName = (id) => {
    const found = (tenants || []).find((t) => t.id === id);
    return found ? found.name : id;
  };

  function showLogin(message) {
    D.byId("board").hidden = true;
    D.byId("who").hidden = true;
    D.byId("login").hidden = false;
    const error = D.byId("login-error");
    error.textContent = message || "";
    error.hidden = !message;
    document.body.dataset.state = "login";
    D.byId("key").focus();
  }

  function showBoard(operator) {
    D.byId("login").hidden = true;
    D.byId("board").hidden = false;
    D.byId("who").hidden = false;
    D.byId("tenant-filter").hidden = !operator;
    D.byId("card-tenants").hidden = !operator;
  }

  function fillTenantSelect() {
    const select = D.byId("tenant-select");
    const sorted = [...tenants].sort((a, b) => a.name.localeCompare(b.name));
    select.replaceChildren(
      D.el("option", { value: "" }, "All tenants"),
      ...sorted.map((t) => D.el("option", { value: t.id }, t.name)),
    );
  }

  // Every day of the budget period (to today for an open-ended one), so the line shows how far
  // into the period the spend has come; days after today have no spend point.
  function periodDays(budget) {
    const dayOf = (date) => date.toISOString().slice(0, 10);
    const today = dayOf(new Date());
    const days = new Set(budget.daily.map((d) => d.day));
    const first = new Date(`${budget.period_start.slice(0, 10)}T00:00:00Z`);
    const last = new Date(`${(budget.period_end || today).slice(0, 10)}T00:00:00Z`);
    if (budget.period_end) last.setUTCDate(last.getUTCDate() - 1); // the end is exclusive
    if ((last - first) / 86400000 <= 366) {
      for (const day = new Date(first); day <= last; day.setUTCDate(day.getUTCDate() + 1)) {
        days.add(dayOf(day));
      }
    }
    return { days: [...days].sort(), today };
  }

  function renderBudget(budget) {
    D.byId("budget-chart-box").hidden = false;
    D.byId("budget-table").hidden = true;
    const cap = Number(budget.cap);
    const used = cap > 0 ? Number(budget.spent) / cap : null;
    const { days, today } = periodDays(budget);
    const perDay = new Map(budget.daily.map((d) => [d.day, Number(d.cost)]));
    let running = 0;
    const cumulative = days.map((day) => (day > today ? null : (running += perDay.get(day) || 0)));
    const datasets = [
      {
        label: "Spent (cumulative)",
        data: cumulative,
        borderColor: "#3b6fd8",
        backgroundColor: "rgba(59, 111, 216, 0.15)",
        fill: true,
        pointRadius: 2,
      },
      { label: "Cap", data: days.map(() => cap), borderColor: "#d64545", pointRadius: 0 },
    ];
    const threshold = budget.alert_threshold;
    if (threshold !== null && threshold !== undefined) {
      datasets.push({
        label: `Alert at ${D.percent(threshold, 0)}`,
        data: days.map(() => cap * threshold),
        borderColor: "#e0a526",
        borderDash: [6, 4],
        pointRadius: 0,
      });
    }
    D.chart("chart-budget", {
      type: "line",
      data: { labels: days, datasets },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          // "11-28" under the axis (the tooltip gives the full date).
          x: {
            ticks: {
              maxRotation: 0,
              autoSkipPadding: 12,
              callback(value) {
                return this.getLabelForValue(value).slice(5);
              },
            },
          },
          y: { beginAtZero: true, ticks: D.moneyTicks },
        },
        plugins: { tooltip: D.moneyTooltip },
      },
    });
    const over = threshold !== null && used !== null && used >= threshold;
    D.text(
      "budget-note",
      `${budget.period} period from ${budget.period_start.slice(0, 10)}` +
        `${budget.period_end ? ` to ${budget.period_end.slice(0, 10)}` : ""}: ` +
        `spent ${D.money(budget.spent)} of ${D.money(budget.cap)} (${D.percent(used)}), ` +
        `${D.money(budget.reserved)} reserved for running jobs` +
        `${over ? " — over the alert threshold" : ""}.`,
    );
    D.byId("card-budget").classList.toggle("alert", over);
    D.text("tile-spent", D.money(budget.spent));
    D.text("tile-cap", `of ${D.money(budget.cap)} cap (${D.percent(used)})`);
  }

  // Operator, all tenants: every tenant's current period against its cap.
  function renderBudgetTable() {
    D.byId("budget-chart-box").hidden = true;
    const table = D.byId("budget-table");
    table.hidden = false;
    const withBudget = tenants.filter((t) => t.budget);
    const used = (t) => (Number(t.budget.cap) > 0 ? Number(t.budget.spent) / Number(t.budget.cap) : 0);
    const sorted = [...withBudget].sort((a, b) => used(b) - used(a));
    D.rows(
      table.querySelector("tbody"),
      sorted.map((t) => {
        const ratio = Number(t.budget.cap) > 0 ? used(t) : null;
        const alert = ratio !== null && ratio >= Number(t.soft_alert_ratio);
        return D.el(
          "tr",
          { class: alert ? "alert" : null },
          D.el("td", {}, t.name),
          D.el("td", {}, t.budget.period),
          D.el("td", { class: "num" }, D.money(t.budget.spent)),
          D.el("td", { class: "num" }, D.money(t.budget.reserved)),
          D.el("td", { class: "num" }, D.money(t.budget.cap)),
          D.el("td", { class: "num" }, D.percent(ratio)),
        );
      }),
    );
    D.text(
      "budget-note",
      "Each tenant's current budget period; rows at or over their alert threshold are marked. " +
        "Choose a tenant above for its spend over the period.",
    );
    D.byId("card-budget").classList.remove("alert");
    const spent = withBudget.reduce((total, t) => total + Number(t.budget.spent), 0);
    D.text("tile-spent", D.moneyOf(spent, 8));
    D.text("tile-cap", `${withBudget.length} tenants, current periods`);
  }

  function renderCost(usage) {
    const models = [...new Set(usage.rows.map((r) => r.model))].sort();
    const roles = [
      ...ROLES,
      ...new Set(usage.rows.map((r) => r.role).filter((r) => !ROLES.includes(r))),
    ].filter((role) => usage.rows.some((r) => r.role === role));
    D.chart("chart-cost", {
      type: "bar",
      data: {
        labels: models,
        datasets: roles.map((role, index) => ({
          label: role,
          data: models.map((model) =>
            sumBy(usage.rows.filter((r) => r.model === model && r.role === role), "cost"),
          ),
          backgroundColor: D.color(role, index),
        })),
      },
      options: {
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: D.moneyTicks } },
        plugins: { tooltip: D.moneyTooltip },
      },
    });
    const t = usage.totals;
    D.text(
      "cost-note",
      `${D.money(t.cost)} over ${D.integer(t.calls)} model calls: ${D.integer(t.prompt_tokens)} ` +
        `prompt and ${D.integer(t.generated_tokens)} generated tokens, ${D.flops(t.flops)}.`,
    );
    D.text("tile-cost", D.money(t.cost));
    D.text("tile-calls", `${D.integer(t.calls)} model calls`);
  }

  // Where the coordinator-alone cost comes from (the savings report's estimate.method).
  const SAVINGS_METHODS = {
    shadow: "shadow runs",
    llm_only_jobs: "llm_only jobs",
    offline_table: "offline table",
    none: "none",
  };

  function renderSavings(savings) {
    D.chart("chart-savings", {
      type: "bar",
      data: {
        labels: ["Tandem", "Coordinator alone (estimate)"],
        datasets: [
          {
            label: "Cost",
            data: [
              Number(savings.tandem_cost),
              savings.counterfactual_cost === null ? null : Number(savings.counterfactual_cost),
            ],
            backgroundColor: ["#2f9e6f", "#8a8f98"],
          },
        ],
      },
      options: {
        scales: { y: { beginAtZero: true, ticks: D.moneyTicks } },
        plugins: { legend: { display: false }, tooltip: D.moneyTooltip },
      },
    });
    const estimate = savings.estimate;
    const method = SAVINGS_METHODS[estimate.method] || estimate.method;
    const basis = `Estimate: ${method}, sample of ${D.integer(estimate.sample_size)}. ${estimate.detail}`;
    const shadow = savings.shadow;
    D.text(
      "savings-shadow",
      `Shadow runs: ${D.integer(shadow.runs)} of ${D.integer(savings.jobs)} tandem jobs measured` +
        (shadow.share === null ? "" : ` (${D.percent(shadow.share)})`) +
        ` by the coordinator alone, ${D.money(shadow.shadow_cost)} on the operator's account.`,
    );
    if (savings.savings === null) {
      D.text("savings-note", `No coordinator-alone estimate for ${D.integer(savings.jobs)} jobs. ${basis}`);
      D.text("tile-savings", "–");
      D.text("tile-share", "no estimate yet");
      return;
    }
    D.text(
      "savings-note",
      `Saved ${D.money(savings.savings)} over ${D.integer(savings.jobs)} jobs: Tandem cost ` +
        `${D.percent(savings.cost_share)} of the coordinator-alone estimate. ${basis}`,
    );
    D.text("tile-savings", D.money(savings.savings));
    D.text("tile-share", `Tandem at ${D.percent(savings.cost_share)} of the cost (${method})`);
  }

  function renderTruncation(truncation) {
    const domains = Object.keys(truncation.domains).sort();
    const levels = [
      ...new Set(domains.flatMap((d) => Object.keys(truncation.domains[d].levels))),
    ].sort((a, b) => Number(a) - Number(b));
    D.chart("chart-truncation", {
      type: "bar",
      data: {
        labels: levels.map((level) => `level ${level}`),
        datasets: domains.map((domain, index) => ({
          label: domain,
          data: levels.map((level) => truncation.domains[domain].levels[level] || 0),
          backgroundColor: D.color(domain, index),
        })),
      },
      options: {
        scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "jobs" } } },
      },
    });
    const table = D.byId("reasons-table");
    const reasons = [
      ...new Set(domains.flatMap((d) => Object.keys(truncation.domains[d].reasons))),
    ].sort();
    table.querySelector("thead").replaceChildren(
      D.el("tr", {}, D.el("th", {}, "Termination reason"),
        ...domains.map((d) => D.el("th", { class: "num" }, d))),
    );
    D.rows(
      table.querySelector("tbody"),
      reasons.map((reason) =>
        D.el("tr", {}, D.el("td", {}, reason),
          ...domains.map((d) => D.el("td", { class: "num" },
            D.integer(truncation.domains[d].reasons[reason] || 0)))),
      ),
    );
  }

  function renderJobs(jobs) {
    const statuses = Object.keys(jobs.by_status).filter((s) => jobs.by_status[s] > 0);
    D.chart("chart-status", {
      type: "doughnut",
      data: {
        labels: statuses,
        datasets: [
          {
            label: "Jobs",
            data: statuses.map((s) => jobs.by_status[s]),
            backgroundColor: statuses.map((s, index) => D.color(s, index)),
          },
        ],
      },
      options: { plugins: { legend: { position: "right" } } },
    });
    const latency = jobs.latency_ms;
    D.text("lat-p50", D.duration(latency.p50));
    D.text("lat-p95", D.duration(latency.p95));
    D.text("lat-p99", D.duration(latency.p99));
    D.text("tile-jobs", D.integer(jobs.total));
    D.text("tile-succeeded", `${D.integer(jobs.by_status.succeeded || 0)} succeeded`);
    D.text("tile-p95", D.duration(latency.p95));
    D.text("tile-p50", `p50 ${D.duration(latency.p50)} · p99 ${D.duration(latency.p99)}`);
  }

  function renderTenants(byTenant) {
    const top = [...byTenant.rows]
      .sort((a, b) => Number(b.cost) - Number(a.cost))
      .slice(0, TOP_TENANTS);
    D.chart("chart-tenants", {
      type: "bar",
      data: {
        labels: top.map((row) => row.tenant_name || tenantName(row.tenant)),
        datasets: [{ label: "Cost", data: top.map((row) => Number(row.cost)), backgroundColor: "#3b6fd8" }],
      },
      options: {
        indexAxis: "y",
        scales: { x: { beginAtZero: true, ticks: D.moneyTicks } },
        plugins: { legend: { display: false }, tooltip: D.moneyTooltip },
      },
    });
  }

  function renderRecent(page) {
    const table = D.byId("jobs-table");
    const note = D.byId("jobs-note");
    if (page === null) {
      table.hidden = true;
      note.hidden = false;
      note.textContent =
        "Jobs are listed per tenant: open the dashboard with a tenant's key to see its recent " +
        "jobs and their audit trails (or run tandem audit job ID on the server).";
      return;
    }
    table.hidden = page.data.length === 0;
    note.hidden = page.data.length > 0;
    note.textContent = "No jobs yet.";
    D.rows(
      table.querySelector("tbody"),
      page.data.map((job) =>
        D.el(
          "tr",
          {},
          D.el("td", {}, D.utc(job.created_at)),
          D.el("td", { class: "mono" }, D.el("a", { href: `/dashboard/jobs/${job.id}` }, job.id)),
          D.el("td", {}, D.statusBadge(job.status)),
          D.el("td", {}, job.domain),
          D.el("td", {}, job.policy),
          D.el("td", { class: "num" }, D.money(job.cost)),
        ),
      ),
    );
  }

  async function load() {
    D.hideError();
    document.body.dataset.state = "loading";
    const operator = D.isOperator();
    try {
      if (operator && tenants === null) {
        tenants = await D.api("/v1/admin/tenants");
        fillTenantSelect();
      }
      const tenantId = operator ? D.byId("tenant-select").value || null : null;
      const range = { start: D.byId("start").value, end: D.byId("end").value };
      const scope = { ...range, tenant_id: tenantId };
      const [usage, savings, truncation, budget, byTenant, recent] = await Promise.all([
        D.api("/v1/reports/usage", { ...scope, group_by: "model,role" }),
        D.api("/v1/reports/savings", scope),
        D.api("/v1/reports/truncation", scope),
        operator && !tenantId ? null : D.api("/v1/reports/budget", { tenant_id: tenantId }),
        operator ? D.api("/v1/reports/usage", { ...range, group_by: "tenant" }) : null,
        operator ? null : D.api("/v1/jobs", { limit: RECENT_JOBS }),
      ]);
      showBoard(operator);
      D.text(
        "mode",
        operator
          ? `Operator · ${tenantId ? tenantName(tenantId) : "all tenants"}`
          : `Tenant ${budget.tenant_id}`,
      );
      D.text("period-label", `Reports from ${D.utc(usage.start)} to ${D.utc(usage.end)} UTC`);
      if (budget) renderBudget(budget);
      else renderBudgetTable();
      renderCost(usage);
      renderSavings(savings);
      renderTruncation(truncation);
      renderJobs(usage.jobs);
      if (operator) renderTenants(byTenant);
      renderRecent(recent);
      document.body.dataset.state = "ready";
      // Panels in their own scripts (alerts.js) load for the same key and tenant.
      document.dispatchEvent(new CustomEvent("dash:ready", { detail: { operator, tenantId } }));
    } catch (error) {
      const refused = error instanceof D.ApiError && (error.status === 401 || error.status === 403);
      if (refused && (tenants === null || !operator)) {
        D.clearKey();
        tenants = null;
        showLogin(`The key was not accepted: ${error.message}`);
      } else {
        D.showError(`Could not load the dashboard: ${error.message}`);
      }
    }
  }

  D.byId("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    D.setKey(D.byId("key").value.trim());
    D.byId("key").value = "";
    tenants = null;
    load();
  });
  D.byId("period").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  D.byId("tenant-select").addEventListener("change", load);
  D.byId("sign-out").addEventListener("click", D.signOut);

  if (D.key()) load();
  else showLogin();
})();
