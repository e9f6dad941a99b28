/* Feedback review: predictions with low confidence or flagged by users; a reviewer accepts
   the model's answer or stores the right one, in the shape the task's head declares. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let shape = null;

  async function loadTasks() {
    const {tasks} = await TH.api("/ui/api/review");
    const wanted = TH.params().get("task");
    TH.options($("task"), tasks.map((t) => [t, t]), wanted || tasks[0]);
    return tasks;
  }

  async function refresh() {
    const task = $("task").value;
    if (!task) return;
    const q = new URLSearchParams({show: $("show").value, threshold: $("threshold").value || "0.6"});
    if ($("reviewed").checked) q.set("reviewed", "1");
    TH.remember({task, show: $("show").value === "review" ? "" : $("show").value});
    TH.say($("state"), "Loading…");
    try {
      shape = await TH.api(`/ui/api/review/${encodeURIComponent(task)}?${q}`);
    } catch (error) {
      TH.say($("state"), error.message, "error");
      return;
    }
    drawRetrain(shape.retrain);
    const items = $("items");
    items.replaceChildren(...shape.items.map(card));
    const fields = Object.keys(shape.corrections);
    let note = `${shape.items.length} prediction${shape.items.length === 1 ? "" : "s"} to review.`;
    if (!fields.length) note = `Task ${task} takes no feedback (its head declares no corrections).`;
    else if (!shape.scores) note += " This task's head declares no scores, so there is no confidence to filter on.";
    TH.say($("state"), note);
  }

  function drawRetrain(retrain) {
    const box = $("retrain");
    box.hidden = !retrain.takes_feedback;
    const since = retrain.serving
      ? `${retrain.since} correction${retrain.since === 1 ? "" : "s"} stored since ${retrain.serving} (the serving version) was trained, ${TH.when(retrain.trained)} UTC.`
      : `${retrain.since} corrections stored; no version trained yet.`;
    $("retrain-count").textContent = since + " Retrain the serving version on them (their inputs join its training rows, never its evaluation rows), then promote only if it is not worse:";
    $("retrain-command").textContent = `${retrain.command}\n${retrain.command} --promote-if-better   # promote only when not worse`;
  }

  function answerText(output) {
    if (output && typeof output === "object" && "label" in output) return String(output.label);
    return JSON.stringify(output);
  }

  /* The widget of one correction field, from its JSON Schema, filled with `value`. */
  function widget(field, schema, value, id) {
    const types = [].concat(schema.type || []);
    if (Array.isArray(schema.enum)) {
      const select = TH.el("select", {id, name: field});
      TH.options(select, schema.enum.map((v) => [String(v), String(v)]), value);
      return {node: select, read: () => select.value};
    }
    if ("const" in schema) {
      return {node: TH.el("span", {id}, `${JSON.stringify(schema.const)} (${schema.description || field})`), read: () => schema.const};
    }
    if (types.includes("boolean")) {
      const select = TH.el("select", {id, name: field});
      TH.options(select, [["true", "true"], ["false", "false"]], String(value === false ? false : true));
      return {node: select, read: () => select.value === "true"};
    }
    if (types.includes("array") || types.includes("object") || !types.length) {
      const area = TH.el("textarea", {id, name: field, spellcheck: "false"});
      area.value = value === undefined ? "" : JSON.stringify(value, null, 1);
      return {node: area, read: () => JSON.parse(area.value)};
    }
    const numeric = types.length && types.every((t) => t === "integer" || t === "number");
    const input = TH.el("input", {id, name: field, type: numeric ? "number" : "text"});
    input.value = value === undefined || value === null ? "" : String(value);
    return {node: input, read: () => {
      if (numeric) return Number(input.value);
      if (types.includes("integer") && /^-?\d+$/.test(input.value) && !types.includes("string")) return Number(input.value);
      return input.value;
    }};
  }

  function card(item) {
    const fields = Object.entries(shape.corrections);
    const status = TH.el("p", {class: "status", role: "status"});
    const pid = item.prediction_id;
    const last = item.feedback.length ? item.feedback[item.feedback.length - 1] : null;
    const lastUser = [...item.feedback].reverse().find((f) => f.source !== "dashboard");
    let chosen = fields.length ? fields[0][0] : null;
    if (lastUser && lastUser.kind && shape.corrections[lastUser.kind]) chosen = lastUser.kind;
    const editors = {};
    const group = TH.el("div", {class: "row"});
    fields.forEach(([field, schema], i) => {
      const id = `fix-${pid}-${field}`;
      const prefill = lastUser && lastUser.kind === field ? lastUser[field]
        : item.output && typeof item.output === "object" ? item.output[field] : undefined;
      editors[field] = widget(field, schema, prefill, id);
      const label = TH.el("label", {for: id}, fields.length > 1
        ? TH.el("span", {}, TH.el("input", {type: "radio", name: `kind-${pid}`, value: field, checked: field === chosen,
            onchange: () => { chosen = field; }}), ` ${field}`) : `Right ${field}`);
      label.append(editors[field].node);
      group.append(label);
    });
    const modelAnswer = (field) => item.output && typeof item.output === "object" ? item.output[field] : undefined;
    const acceptable = fields.some(([field]) => modelAnswer(field) !== undefined);
    async function send(action, value, field) {
      const body = {task: $("task").value, prediction_id: pid, [field]: value, action};
      const reviewer = $("reviewer").value.trim();
      if (reviewer) body.user = reviewer;
      try {
        const stored = await TH.api("/ui/api/feedback", {body});
        TH.say(status, `Stored as feedback #${stored.id} (${action === "accept" ? "the model's answer is right" : `${field}: ${JSON.stringify(value)}`}).`, "ok");
        node.classList.add("done");
      } catch (error) {
        TH.say(status, error.message, "error");
        if (error.status === 401) status.append(TH.signInHint());
      }
    }
    const accept = TH.el("button", {type: "button", class: "secondary", disabled: !acceptable,
      title: acceptable ? null : "the output has no such field to accept",
      onclick: () => {
        if (modelAnswer(chosen) === undefined) { TH.say(status, `The model's output has no ${chosen} to accept.`, "error"); return; }
        send("accept", modelAnswer(chosen), chosen);
      }}, "Accept the model's answer");
    const save = TH.el("button", {type: "submit"}, "Save correction");
    const form = TH.el("form", {"aria-label": `Correct prediction ${pid}`, onsubmit: (event) => {
      event.preventDefault();
      let value;
      try { value = editors[chosen].read(); } catch (error) { TH.say(status, `${chosen}: not valid JSON (${error.message}).`, "error"); return; }
      send("correct", value, chosen);
    }}, fields.length > 1 ? TH.el("fieldset", {}, TH.el("legend", {}, "Right answer"), group) : group,
      TH.el("div", {class: "actions"}, accept, fields.length ? save : ""), status);
    const confidence = item.confidence === null || item.confidence === undefined ? null : item.confidence;
    const node = TH.el("article", {class: "card item", "data-prediction": pid},
      TH.el("div", {class: "text"}, typeof item.input === "string" ? item.input : JSON.stringify(item.input)),
      TH.el("div", {class: "row small"},
        TH.el("span", {}, "Model: ", TH.el("strong", {}, answerText(item.output))),
        confidence === null ? "" : TH.el("span", {}, `confidence ${TH.fmt(confidence, 2)} `,
          TH.el("span", {class: "meter", role: "img", "aria-label": `confidence ${TH.fmt(confidence, 2)}`},
            (() => { const bar = TH.el("span"); bar.style.width = `${Math.round(confidence * 100)}%`; return bar; })())),
        item.low ? TH.el("span", {class: "badge low"}, "low confidence") : "",
        item.flagged ? TH.el("span", {class: "badge flagged"}, "flagged by a user") : "",
        item.reviewed ? TH.el("span", {class: "badge"}, "reviewed") : "",
        TH.el("span", {class: "muted"}, `${item.model}, ${TH.when(item.created)} UTC`)),
      lastUser ? TH.el("p", {class: "small"}, `A user said ${lastUser.kind}: ${JSON.stringify(lastUser[lastUser.kind])}` +
        (lastUser.user ? ` (${lastUser.user})` : "") + ".") : "",
      last && last.source === "dashboard" ? TH.el("p", {class: "small muted"}, `Reviewed: ${last.kind} ${JSON.stringify(last[last.kind])}.`) : "",
      form);
    return node;
  }

  document.addEventListener("DOMContentLoaded", async () => {
    await TH.ready;
    const params = TH.params();
    if (params.get("show")) $("show").value = params.get("show");
    $("reviewer").value = localStorage.getItem("tunehub-reviewer") || "";
    $("reviewer").addEventListener("change", () => localStorage.setItem("tunehub-reviewer", $("reviewer").value.trim()));
    try {
      const tasks = await loadTasks();
      if (!tasks.length) { TH.say($("state"), "No predictions stored yet: `app serve TASK` stores what it answers."); return; }
    } catch (error) {
      TH.say($("state"), error.message, "error");
      return;
    }
    $("filters").addEventListener("change", (event) => { if (event.target.id !== "reviewer") refresh(); });
    $("filters").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
    $("refresh").addEventListener("click", refresh);
    $("copy").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(shape.retrain.command);
        $("copied").textContent = "Copied.";
      } catch (error) {
        $("copied").textContent = "Select the command and copy it.";
      }
    });
    await refresh();
  });
})();
