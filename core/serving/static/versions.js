/* Versions: each task's versions with metrics beside the baselines, @serving, reports,
   a compare view (the figures of `app models compare`) and promote behind a confirmation. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let tasks = [];

  async function load() {
    try {
      ({tasks} = await TH.api("/ui/api/versions"));
    } catch (error) {
      TH.say($("state"), error.message, "error");
      return;
    }
    const box = $("tasks");
    box.replaceChildren();
    if (!tasks.length) TH.say($("state"), "No fine-tuned versions yet: `app run-task TASK` makes one.");
    for (const task of tasks) box.append(taskCard(task));
  }

  function metricNames(task) {
    const names = [];
    for (const v of task.versions) for (const name of Object.keys(v.metrics)) if (!names.includes(name)) names.push(name);
    const primary = task.versions.length ? task.versions[task.versions.length - 1].primary_metric : null;
    return primary && names.includes(primary) ? [primary, ...names.filter((n) => n !== primary)] : names;
  }

  /* A metric of a version, and each baseline's value of it beneath. */
  function metricCell(version, name) {
    const baselines = Object.entries(version.baselines || {}).filter(([, values]) => typeof values[name] === "number");
    return TH.el("td", {class: "num"}, TH.el("strong", {}, TH.fmt(version.metrics[name], 4)),
      baselines.map(([baseline, values]) => TH.el("div", {class: "small muted"}, `${baseline} ${TH.fmt(values[name], 4)}`)));
  }

  function taskCard(task) {
    const names = metricNames(task);
    const head = TH.el("tr", {}, TH.el("th", {scope: "col"}, "version"), TH.el("th", {scope: "col"}, "created (UTC)"),
      TH.el("th", {scope: "col"}, "base model"),
      names.map((n) => TH.el("th", {scope: "col", class: "num"}, `${n} (baselines)`)),
      TH.el("th", {scope: "col"}, "serving"), TH.el("th", {scope: "col"}, "actions"));
    const rows = task.versions.slice().reverse().map((v) => TH.el("tr", {"data-version": v.version},
      TH.el("th", {scope: "row"}, v.version),
      TH.el("td", {}, TH.when(v.created)), TH.el("td", {}, v.base_model || ""),
      names.map((n) => metricCell(v, n)),
      TH.el("td", {}, v.serving ? TH.el("span", {class: "badge serving"}, "@serving") : ""),
      TH.el("td", {}, TH.el("div", {class: "row"},
        v.report ? TH.el("button", {type: "button", class: "secondary", onclick: () => showReport(task.task, v.version)}, `Report of ${v.version}`) : "",
        v.serving ? "" : TH.el("button", {type: "button", onclick: () => confirmPromote(task.task, v.version)}, `Promote ${v.version}…`)))));
    const pointer = task.pointer
      ? `@serving is ${task.serving}, promoted ${TH.when(task.pointer.promoted)} UTC (${task.pointer.reason}).`
      : task.serving ? `Nothing promoted yet: @serving means the latest, ${task.serving}.` : "";
    const refs = task.versions.map((v) => [v.version, v.ref]);
    const a = TH.el("select", {name: "a"}), b = TH.el("select", {name: "b"});
    TH.options(a, refs, refs.length > 1 ? refs[refs.length - 2][0] : undefined);
    TH.options(b, refs, refs.length ? refs[refs.length - 1][0] : undefined);
    const compareForm = TH.el("form", {class: "row", "aria-label": `Compare two versions of ${task.task}`,
      onsubmit: (event) => { event.preventDefault(); compare(task.task, a.value, b.value); }},
      TH.el("label", {}, "A (the reference)", a), TH.el("label", {}, "B (the candidate)", b),
      TH.el("button", {type: "submit", class: "secondary"}, "Compare"));
    return TH.el("section", {class: "card", "data-task": task.task, "aria-label": task.task},
      TH.el("h2", {}, task.task),
      TH.el("p", {class: task.problem ? "error" : "muted small"}, task.problem || pointer),
      TH.el("div", {class: "table-wrap"}, TH.el("table", {}, TH.el("thead", {}, head), TH.el("tbody", {}, rows))),
      task.versions.length > 1 ? compareForm : "");
  }

  async function showReport(task, version) {
    const section = $("report-section"), box = $("report");
    section.hidden = false;
    $("report-title").textContent = `Report of ${task}@${version}`;
    box.textContent = "Loading…";
    try {
      const {html} = await TH.api(`/ui/api/versions/${encodeURIComponent(task)}/${encodeURIComponent(version)}/report`);
      box.innerHTML = html;  /* rendered by the server with raw HTML escaped */
    } catch (error) {
      box.replaceChildren(TH.el("p", {class: "error"}, error.message));
    }
    section.scrollIntoView();
    $("report-title").setAttribute("tabindex", "-1");
    $("report-title").focus();
  }

  async function compare(task, a, b) {
    const section = $("compare-section"), box = $("compare");
    section.hidden = false;
    $("compare-title").textContent = `Compare ${task}@${a} (A) with ${task}@${b} (B)`;
    box.replaceChildren(TH.el("p", {role: "status"}, "Scoring both versions on the same rows (both models load: this can take a while)…"));
    section.scrollIntoView();
    let result;
    try {
      result = await TH.api("/ui/api/compare", {body: {task, a, b}});
    } catch (error) {
      box.replaceChildren(TH.el("p", {class: "error", role: "alert"}, error.message));
      return;
    }
    const verdict = (text) => TH.el("td", {class: text === "B better" ? "verdict-better" : text === "B worse" ? "verdict-worse" : ""}, text);
    const rows = Object.entries(result.metrics).map(([name, m]) => TH.el("tr", {},
      TH.el("th", {scope: "row"}, name + (name === result.primary_metric ? " (primary)" : "")),
      TH.el("td", {class: "num"}, TH.fmt(m.a, 4)), TH.el("td", {class: "num"}, TH.fmt(m.b, 4)),
      TH.el("td", {class: "num"}, (m.difference >= 0 ? "+" : "") + TH.fmt(m.difference, 4)),
      TH.el("td", {class: "num"}, `[${TH.fmt(m.ci95[0], 4)}, ${TH.fmt(m.ci95[1], 4)}]`), verdict(m.verdict)));
    const parts = [
      TH.el("p", {}, `${result.a} (A) against ${result.b} (B) on ${result.examples} examples; ` +
        `${result.bootstrap.rounds} paired bootstrap resamples (seed ${result.bootstrap.seed}).`),
      TH.el("div", {class: "table-wrap"}, TH.el("table", {"aria-label": "Metrics of A and B"},
        TH.el("thead", {}, TH.el("tr", {}, ["metric", "A", "B", "B − A", "95% interval", "verdict"].map((h, i) =>
          TH.el("th", {scope: "col", class: i && i < 5 ? "num" : ""}, h)))),
        TH.el("tbody", {}, rows))),
      TH.el("p", {class: "small muted"}, `Rows: ${result.fairness}`)];
    if (result.mcnemar) {
      const t = result.mcnemar;
      parts.push(TH.el("p", {}, `McNemar: ${t.only_a_right} right only with A, ${t.only_b_right} only with B, p = ${Number(t.p_value).toPrecision(4)} (${t.method}).`));
    }
    parts.push(TH.el("p", {}, `${result.changed} answers changed` + (result.changed ? `; the first ${result.changed_examples.length}:` : ".")));
    if (result.changed_examples.length) {
      parts.push(TH.el("div", {class: "table-wrap"}, TH.el("table", {"aria-label": "Answers that changed"},
        TH.el("thead", {}, TH.el("tr", {}, ["#", "input", "A", "B", "truth"].map((h) => TH.el("th", {scope: "col"}, h)))),
        TH.el("tbody", {}, result.changed_examples.map((e) => TH.el("tr", {},
          TH.el("td", {}, e.index), TH.el("td", {}, typeof e.input === "string" ? e.input : JSON.stringify(e.input)),
          TH.el("td", {}, JSON.stringify(e.a)), TH.el("td", {}, JSON.stringify(e.b)), TH.el("td", {}, JSON.stringify(e.truth))))))));
    }
    box.replaceChildren(...parts);
  }

  function confirmPromote(task, version) {
    const ref = `${task}@${version}`;
    const dialog = $("confirm");
    $("confirm-title").textContent = `Promote ${ref}?`;
    $("confirm-text").textContent = `${ref} becomes ${task}@serving: what \`app serve ${task}\` answers with. ` +
      "A server that follows @serving switches to it within seconds, without dropping requests.";
    $("confirm-ok").textContent = `Promote ${ref}`;
    dialog.returnValue = "";
    dialog.onclose = async () => {
      if (dialog.returnValue !== "promote") return;
      try {
        const pointer = await TH.api("/ui/api/promote", {body: {task, version, confirm: ref}});
        TH.say($("state"), `${pointer.task}@serving -> ${pointer.version}` + (pointer.previous ? ` (was ${pointer.previous}).` : "."), "ok");
        await load();
      } catch (error) {
        TH.say($("state"), error.message, "error");
        if (error.status === 401) $("state").append(TH.signInHint());
      }
    };
    dialog.showModal();
    $("confirm-cancel").focus();
  }

  document.addEventListener("DOMContentLoaded", async () => {
    await TH.ready;
    await load();
  });
})();
