/* Monitoring: per-entity trend and volume from the monitor's state, alerts with their
   examples; polls every few seconds while `app monitor` writes. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 3000;
  let data = null, timer = null, busy = false;
  let initialEntity = TH.params().get("entity");  /* from the address, until the first answer */

  function query(withVersion) {
    const q = new URLSearchParams();
    const entity = $("entity").value || initialEntity;
    if (entity) q.append("entity", entity);
    if ($("since").value) q.set("since", $("since").value);
    if ($("until").value) q.set("until", untilEnd($("until").value));
    if ($("window").value) q.set("window_s", $("window").value);
    if (withVersion && data && data.version) q.set("version", data.version);
    return q;
  }

  function untilEnd(day) { return day + "T23:59:59Z"; }  /* "to" includes that whole day */

  async function loadTasks() {
    const {tasks} = await TH.api("/ui/api/monitor");
    const wanted = TH.params().get("task");
    TH.options($("task"), tasks.map((t) => [t, t]), wanted || tasks[0]);
    return tasks;
  }

  async function refresh(poll) {
    const task = $("task").value;
    if (!task || busy) return;
    busy = true;
    try {
      const answer = await TH.api(`/ui/api/monitor/${encodeURIComponent(task)}?${query(poll)}`);
      if (answer.unchanged) { stamp(); return; }
      data = answer;
      draw();
      stamp();
    } catch (error) {
      TH.say($("state"), error.message, "error");
    } finally {
      busy = false;
    }
  }

  function stamp() {
    const run = data && data.runs && data.runs[0];
    const live = $("live").checked;
    const parts = [];
    if (run) parts.push(`Latest run ${run.status} (${run.model}, ${run.rows} rows), written ${TH.when(run.updated)} UTC.`);
    parts.push(live ? `Live: checked ${new Date().toLocaleTimeString()}.` : "Live updates paused.");
    TH.say($("state"), parts.join(" "));
  }

  function fillFilters() {
    const entity = $("entity").value || initialEntity || "";
    initialEntity = null;
    const pairs = [["", `All entities (top ${Math.min(12, data.entities.length)} by volume)`]]
      .concat(data.entities.map((e) => [e.entity, `${e.entity} (${e.volume} rows${e.alerts ? `, ${e.alerts} alerts` : ""})`]));
    TH.options($("entity"), pairs, entity);
    const windows = data.windows.map((w) => [String(w), duration(w)]);
    TH.options($("window"), windows, data.window_s);
  }

  function duration(seconds) {
    for (const [unit, size] of [["w", 604800], ["d", 86400], ["h", 3600], ["m", 60]])
      if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
    return `${seconds}s`;
  }

  function draw() {
    fillFilters();
    const measure = $("measure").value;
    $("measure-name").textContent = measure === "net" ? "net sentiment" : "negative share";
    const names = Object.keys(data.series);
    const all = names.flatMap((n) => data.series[n]);
    const span = all.length ? [Math.min(...all.map((w) => w[0])), Math.max(...all.map((w) => w[1]))] : [0, 1];
    const panels = $("panels");
    panels.className = "panels" + (names.length === 1 ? " single" : "");
    panels.replaceChildren();
    if (!names.length) {
      panels.append(TH.el("p", {class: "muted"}, data.version
        ? "No windows in this range." : "Nothing monitored yet: run `app monitor TASK --input FILE` (it keeps its windows under TUNEHUB_HOME/monitor/TASK)."));
    }
    for (const name of names) {
      const windows = data.series[name];
      const volume = windows.reduce((sum, w) => sum + w[2], 0);
      const alerts = windows.filter((w) => w[5]).length;
      const chart = TH.el("div", {class: "chart"});
      const width = (names.length === 1 ? panels.clientWidth : Math.min(panels.clientWidth, 560)) - 34;
      chart.innerHTML = TH.chart(name, windows, measure, span, width);  /* markup with every text escaped */
      panels.append(TH.el("article", {class: "card", "data-entity": name},
        TH.el("h3", {}, name, " ", TH.el("span", {class: "muted small"}, `${volume} rows, ${windows.length} windows`),
          alerts ? TH.el("span", {class: "badge alert"}, ` ${alerts} alert${alerts > 1 ? "s" : ""}`) : ""),
        chart));
    }
    drawAlerts();
    drawRuns();
    TH.remember({task: $("task").value, entity: $("entity").value, since: $("since").value,
                 until: $("until").value, measure: measure === "net" ? "net" : ""});
  }

  function drawAlerts() {
    const box = $("alerts");
    box.replaceChildren();
    $("alert-count").textContent = String(data.alerts.length);
    if (!data.alerts.length) box.append(TH.el("p", {class: "muted"}, "No alerts in this range."));
    for (const alert of data.alerts.slice().reverse()) {
      const examples = TH.el("ol", {class: "examples"}, (alert.examples || []).map((t) => TH.el("li", {}, t)));
      box.append(TH.el("details", {class: "alert", "data-entity": alert.entity, "data-start": alert.start},
        TH.el("summary", {},
          TH.el("strong", {}, alert.entity), ` — ${TH.when(alert.window_start)} to ${TH.when(alert.window_end)} UTC: `,
          `negative share ${TH.fmt(alert.negative_share, 2)} against a baseline of ${TH.fmt(alert.baseline_share, 2)} `,
          `(${alert.volume} rows, score ${TH.fmt(alert.score, 1)}, rule ${alert.rule})`),
        TH.el("p", {class: "small muted"}, "The most negative texts of the window:"), examples));
    }
  }

  function drawRuns() {
    const body = $("runs").querySelector("tbody");
    body.replaceChildren(...(data.runs || []).map((r) => TH.el("tr", {},
      TH.el("td", {}, TH.when(r.started)), TH.el("td", {}, r.status), TH.el("td", {}, r.model),
      TH.el("td", {}, r.source), TH.el("td", {}, r.window), TH.el("td", {class: "num"}, r.rows),
      TH.el("td", {class: "num"}, r.windows), TH.el("td", {class: "num"}, r.alerts),
      TH.el("td", {}, TH.when(r.updated)))));
  }

  /* A marker on a chart opens its alert below, with the examples. */
  function openAlert(mark) {
    const found = [...document.querySelectorAll("details.alert")].find((d) =>
      d.dataset.entity === mark.dataset.entity && d.dataset.start === mark.dataset.start);
    if (!found) return;
    document.querySelectorAll("details.alert.current").forEach((d) => d.classList.remove("current"));
    found.open = true;
    found.classList.add("current");
    found.scrollIntoView({block: "center"});
    found.querySelector("summary").focus();
  }

  function schedule() {
    clearInterval(timer);
    if ($("live").checked) timer = setInterval(() => refresh(true), POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", async () => {
    await TH.ready;
    const params = TH.params();
    for (const id of ["since", "until"]) if (params.get(id)) $(id).value = params.get(id);
    if (params.get("measure") === "net") $("measure").value = "net";
    try {
      const tasks = await loadTasks();
      if (!tasks.length) {
        TH.say($("state"), "Nothing monitored yet: run `app monitor TASK --input FILE`; its windows and alerts appear here as they close.");
      }
    } catch (error) {
      TH.say($("state"), error.message, "error");
      return;
    }
    $("filters").addEventListener("change", (event) => {
      if (event.target.id === "live") { schedule(); stamp(); return; }
      if (event.target.id === "measure") { draw(); return; }
      if (event.target.id === "task") { data = null; $("entity").value = ""; }
      refresh(false);
    });
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("panels").addEventListener("click", (event) => {
      const mark = event.target.closest(".alert-mark");
      if (mark) openAlert(mark);
    });
    $("panels").addEventListener("keydown", (event) => {
      const mark = event.target.closest(".alert-mark");
      if (mark && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); openAlert(mark); }
    });
    let resized = null;
    window.addEventListener("resize", () => {
      clearTimeout(resized);
      resized = setTimeout(() => { if (data) draw(); }, 200);
    });
    await refresh(false);
    schedule();
  });
})();
