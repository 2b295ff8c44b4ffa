// One job's audit trail: GET /v1/jobs/{id} (result, usage, timings) and
// GET /v1/jobs/{id}/audit (scores, every model call, every event), with the owner's key.
"use strict";

(() => {
  const D = Dash;
  const jobId = decodeURIComponent(window.location.pathname.split("/").pop());

  function showLogin(message) {
    D.byId("board").hidden = true;
    D.byId("login").hidden = false;
    const error = D.byId("login-error");
    error.textContent = message || "";
    error.hidden = !message;
    document.body.dataset.state = "login";
    D.byId("key").focus();
  }

  function renderSummary(job, audit) {
    D.text("tile-status", job.status);
    D.text("tile-policy", `${job.policy} · ${job.domain}`);
    D.text("tile-cost", D.money(job.cost));
    D.text("tile-reserved", `${D.money(job.reserved)} reserved`);
    const t = job.truncation;
    D.text("tile-level", t.level === null ? "–" : `level ${t.level}`);
    D.text(
      "tile-reason",
      t.level === null ? "not decided" : `${D.integer(t.tokens)} insight tokens · ${t.reason}`,
    );
    const seconds = (s) => (s === null ? null : s * 1000);
    D.text("tile-run", D.duration(seconds(job.timings.run_s)));
    D.text("tile-queued", `queued ${D.duration(seconds(job.timings.queued_s))}`);
    const facts = [
      ["Created", `${D.utc(job.timings.created_at)} UTC`],
      ["Finished", job.timings.finished_at ? `${D.utc(job.timings.finished_at)} UTC` : "–"],
      ["Levels", job.levels.join(", ")],
      ["Answer budget", `${D.integer(job.max_answer_tokens)} tokens`],
      ["Prompt version", job.prompt_version],
      ["Classifier", audit.classifier_version || "–"],
      ["Thresholds", audit.thresholds ? audit.thresholds.map((x) => x.toFixed(3)).join(", ") : "–"],
    ];
    if (job.error) facts.push(["Error", `${job.error.code}: ${job.error.message}`]);
    D.byId("facts").replaceChildren(
      ...facts.map(([name, value]) => D.el("div", {}, D.el("dt", {}, name), D.el("dd", {}, value))),
    );
    D.text("question", job.question);
    D.text("answer", job.answer === null ? "(no answer)" : job.answer);
    D.text("insights", job.insights || "(none)");
    D.text("insight-tokens", D.integer(audit.insight_tokens_written));
    D.text("reasoning", job.reasoning || "(none)");
  }

  function renderScores(audit) {
    const scores = [...audit.scores].sort((a, b) => a.level - b.level);
    D.chart("chart-scores", {
      type: "line",
      data: {
        labels: scores.map((s) => `level ${s.level}`),
        datasets: [
          { label: "Score", data: scores.map((s) => s.score), borderColor: "#3b6fd8", pointRadius: 4 },
          {
            label: "Threshold",
            data: scores.map((s) => s.threshold),
            borderColor: "#e0a526",
            borderDash: [6, 4],
            pointRadius: 0,
          },
        ],
      },
      options: { scales: { y: { min: 0, max: 1 } } },
    });
    D.text(
      "scores-note",
      scores.length
        ? scores.map((s) => `level ${s.level}: ${Number(s.score).toFixed(3)} → ${s.decision}`).join(" · ")
        : "This job was not scored (its policy fixes the level, or it ended before scoring).",
    );
  }

  function renderUsage(job) {
    const labels = job.usage.map((u) => `${u.role} · ${u.model}`);
    D.chart("chart-usage", {
      type: "bar",
      data: {
        labels,
        datasets: [
          {
            label: "Cost",
            data: job.usage.map((u) => Number(u.cost)),
            backgroundColor: job.usage.map((u, index) => D.color(u.role, index)),
          },
        ],
      },
      options: {
        indexAxis: "y",
        scales: { x: { beginAtZero: true, ticks: D.moneyTicks } },
        plugins: { legend: { display: false }, tooltip: D.moneyTooltip },
      },
    });
    D.rows(
      D.byId("usage-table").querySelector("tbody"),
      job.usage.map((u) =>
        D.el("tr", {},
          D.el("td", {}, u.role),
          D.el("td", {}, u.model),
          D.el("td", { class: "num" }, D.integer(u.calls)),
          D.el("td", { class: "num" }, D.integer(u.prompt_tokens)),
          D.el("td", { class: "num" }, D.integer(u.generated_tokens)),
          D.el("td", { class: "num" }, D.money(u.cost))),
      ),
    );
  }

  function renderCalls(audit) {
    D.rows(
      D.byId("calls-table").querySelector("tbody"),
      audit.calls.map((c) =>
        D.el("tr", {},
          D.el("td", { class: "mono" }, c.step),
          D.el("td", {}, c.role),
          D.el("td", {}, c.model),
          D.el("td", {}, c.engine),
          D.el("td", { class: "num" }, c.level === null ? "–" : c.level),
          D.el("td", { class: "num" }, D.integer(c.prompt_tokens)),
          D.el("td", { class: "num" }, D.integer(c.generated_tokens)),
          D.el("td", { class: "num" }, D.duration(c.latency_ms)),
          D.el("td", { class: "num" }, D.flops(c.flops)),
          D.el("td", { class: "num" }, D.money(c.cost)),
          D.el("td", {}, c.finish_reason || "–")),
      ),
    );
  }

  function renderEvents(audit) {
    D.rows(
      D.byId("events-table").querySelector("tbody"),
      audit.events.map((e) =>
        D.el("tr", {},
          D.el("td", {}, D.utc(e.at)),
          D.el("td", {}, e.kind),
          D.el("td", {}, e.status ? D.statusBadge(e.status) : "–"),
          D.el("td", { class: "num" }, e.level === null ? "–" : e.level),
          D.el("td", { class: "mono details" },
            Object.keys(e.data).length ? JSON.stringify(e.data) : "")),
      ),
    );
  }

  async function load() {
    D.hideError();
    document.body.dataset.state = "loading";
    try {
      const [job, audit] = await Promise.all([
        D.api(`/v1/jobs/${encodeURIComponent(jobId)}`),
        D.api(`/v1/jobs/${encodeURIComponent(jobId)}/audit`),
      ]);
      D.byId("login").hidden = true;
      D.byId("board").hidden = false;
      renderSummary(job, audit);
      renderScores(audit);
      renderUsage(job);
      renderCalls(audit);
      renderEvents(audit);
      document.body.dataset.state = "ready";
    } catch (error) {
      if (error instanceof D.ApiError && error.status === 401) {
        // The admin key stays (the overview still works with it); a rejected tenant key goes.
        if (!D.isOperator()) D.clearKey();
        showLogin(
          D.isOperator()
            ? "A job's audit trail opens with the key of the tenant that owns it."
            : `The key was not accepted: ${error.message}`,
        );
      } else {
        D.showError(`Could not load job ${jobId}: ${error.message}`);
      }
    }
  }

  D.text("job-id", jobId);
  document.title = `Tandem serve · job ${jobId}`;
  D.byId("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    D.setKey(D.byId("key").value.trim());
    D.byId("key").value = "";
    load();
  });
  D.byId("sign-out").addEventListener("click", D.signOut);

  if (D.key()) load();
  else showLogin();
})();
