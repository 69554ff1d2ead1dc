// The import wizard's steps. Every decision is the server's: this script only sends the file
// to /api/imports/preview (and, on Import, to /api/imports with the preview's fingerprint)
// and shows what comes back.
"use strict";

// Destructive forms (removing an account) ask first.
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

(function () {
  const wizard = document.getElementById("wizard");
  if (!wizard) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const DELIMITERS = { ",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe" };
  const PAGE = 50;
  const OUTCOMES = ["added", "updated", "unchanged", "discarded", "rejected", "duplicates"];
  const state = { type: "email", file: null, bytes: null, delimiter: null, sheet: null, preview: null, page: 0,
    map: {}, mapping: "", mappings: [], previews: 0 };

  function show(step) {
    wizard.dataset.step = String(step);
    for (const section of wizard.querySelectorAll(".step")) {
      section.hidden = section.id !== "step-" + step;
    }
    for (const item of document.querySelectorAll(".steps li")) {
      if (item.dataset.step === String(step)) item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
    }
    const heading = $("h-" + step);
    heading.tabIndex = -1;
    heading.focus();
  }

  for (const button of wizard.querySelectorAll("[data-goto]")) {
    button.addEventListener("click", () => show(Number(button.dataset.goto)));
  }

  for (const radio of document.querySelectorAll('input[name="account-type"]')) {
    radio.addEventListener("change", () => {
      state.type = radio.value;
      for (const block of wizard.querySelectorAll(".columns")) {
        block.hidden = block.dataset.type !== state.type;
      }
      offerMappings();
      state.map = {};
      state.mapping = "";
      if (state.bytes) preview(null);
    });
  }

  // The saved column mappings of the chosen account type, offered in the Columns step.
  function offerMappings() {
    const options = [text("option", "None")];
    options[0].value = "";
    for (const saved of state.mappings.filter((m) => m.type === state.type)) {
      const option = text("option", saved.name + " (saved by " + saved.created_by + ")");
      option.value = saved.name;
      options.push(option);
    }
    $("saved-mapping").replaceChildren(...options);
    $("saved-mapping").value = state.mapping;
  }

  fetch("/api/mappings", { headers: { "Accept": "application/json" } })
    .then((r) => (r.ok ? r.json() : { mappings: [] }))
    .then((answer) => {
      state.mappings = answer.mappings || [];
      offerMappings();
    });

  function text(tag, content, className) {
    const element = document.createElement(tag);
    element.textContent = content == null ? "" : String(content);
    if (className) element.className = className;
    return element;
  }

  function fail(message) {
    const box = $("wizard-error");
    box.textContent = message;
    box.hidden = false;
  }

  async function call(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream", "X-CSRF-Token": csrf },
      body: body,
    });
    let json = null;
    try { json = await response.json(); } catch (_) { /* a body that is not JSON */ }
    return { status: response.status, json: json };
  }

  function query(delimiter) {
    let q = "type=" + encodeURIComponent(state.type);
    if (state.sheet) q += "&sheet=" + encodeURIComponent(state.sheet);
    else if (delimiter) q += "&delimiter=" + encodeURIComponent(delimiter);
    if (state.mapping) q += "&mapping=" + encodeURIComponent(state.mapping);
    for (const [field, source] of Object.entries(state.map)) {
      q += "&map=" + encodeURIComponent(field + "=" + source);
    }
    return q;
  }

  // A preview of a file whose headers are not ours still answers, every line rejected for
  // the fields it lacks, so that the Columns step can offer its columns.
  function previewQuery(delimiter) {
    return query(delimiter) + "&missing_columns=reject";
  }

  // Each choice previews anew; only the answer to the latest request is shown, so that
  // quick choices never leave an older answer on the page. While one is awaited the wizard
  // is marked busy (data-previewing).
  async function preview(delimiter) {
    $("wizard-error").hidden = true;
    const ticket = ++state.previews;
    wizard.dataset.previewing = "true";
    const answer = await call("/api/imports/preview?results_limit=" + PAGE + "&" + previewQuery(delimiter), state.bytes);
    if (ticket !== state.previews) return;
    delete wizard.dataset.previewing;
    if (answer.status !== 200) {
      fail(answer.json && answer.json.error ? answer.json.error.message : "The preview failed (" + answer.status + ").");
      $("next-3").disabled = true;
      return;
    }
    state.preview = answer.json;
    state.delimiter = DELIMITERS[answer.json.delimiter] || "comma";
    // A spreadsheet file: the sheet read is the one every later request names.
    state.sheet = answer.json.sheet || null;
    state.page = 0;
    render();
  }

  // Lines the server found of the wrong width, among those it lists: most of them means the
  // file was split on the wrong delimiter, which is easier to fix here than in the review.
  function warnWidth(p) {
    const wrong = (p.lines || []).filter((l) => /^expected \d+ columns, found \d+/.test(l.message));
    const listed = Math.min(p.rows, 100);
    const warning = $("delimiter-warning");
    warning.hidden = !(listed > 0 && wrong.length * 2 > listed);
    if (!warning.hidden) {
      warning.textContent = "Most lines do not split into the columns this account type has (" +
        wrong[0].message + "): is the delimiter right?";
    }
  }

  function render() {
    const p = state.preview;
    showRaw(p);
    warnWidth(p);
    $("next-3").disabled = false;
    const sheet = Boolean(p.format);
    $("encoding-label").textContent = sheet ? "format" : "encoding";
    $("encoding").textContent = sheet ? p.format + " spreadsheet" : p.encoding + (p.bom ? " (with byte-order mark)" : "");
    $("header").textContent = p.header ? "yes" : "no";
    $("delimiter-choice").hidden = sheet;
    $("sheet-choice").hidden = !sheet;
    if (sheet) {
      $("sheet").replaceChildren(...p.sheets.map((name) => {
        const option = text("option", name);
        option.value = name;
        return option;
      }));
      $("sheet").value = p.sheet;
    } else {
      $("delimiter").value = state.delimiter;
    }
    renderColumns(p);
    renderFields(p);
    renderCounts($("review-counts"), p);
    renderReview();
    renderImport();
  }

  // The first lines as the file has them, but rebuilt from the server's split so that
  // password cells show masked: the page never displays a password.
  function showRaw(p) {
    const lines = [];
    // A sheet's cells have no delimiter: they are shown separated by tabs.
    const separator = p.delimiter || "\t";
    if (p.header) lines.push(p.columns.map((c) => c.header || "").join(separator));
    for (const row of p.sample.slice(0, 12)) lines.push(row.cells.join(separator));
    $("raw").textContent = lines.join("\n");
    $("raw-preview").hidden = false;
  }

  function renderColumns(p) {
    const table = $("columns-table");
    const head = document.createElement("tr");
    head.appendChild(text("th", "Line"));
    p.columns.forEach((c, i) => {
      const th = text("th", c.column || (c.header ? c.header + " (ignored)" : "column " + (i + 1) + " (ignored)"));
      th.scope = "col";
      head.appendChild(th);
    });
    table.tHead.replaceChildren(head);
    const rows = p.sample.map((row) => {
      const tr = document.createElement("tr");
      tr.appendChild(text("td", row.line));
      for (const cell of row.cells) tr.appendChild(text("td", cell));
      return tr;
    });
    table.tBodies[0].replaceChildren(...rows);
  }

  // The first values a field takes in the sample: its column's cells, or its template
  // filled in from them (password cells arrive masked).
  function firstValues(p, source) {
    if (!source) return "";
    const headers = p.columns.map((c) => c.header || "");
    const cell = (row, name) => {
      const i = headers.indexOf(name);
      return i < 0 ? "" : (row.cells[i] || "");
    };
    return p.sample.slice(0, 3).map((row) => {
      if (headers.includes(source)) return cell(row, source);
      return source.replace(/\{([^{}]+)\}/g, (_, name) => cell(row, name.trim()));
    }).filter((v) => v !== "").join(", ");
  }

  function renderFields(p) {
    const headers = p.columns.map((c) => c.header).filter((h) => h);
    const rows = (p.fields || []).map((f) => {
      const tr = document.createElement("tr");
      const th = text("th", f.field);
      th.scope = "row";
      if (f.required) th.appendChild(text("span", " (required)", "required"));
      tr.appendChild(th);
      const select = document.createElement("select");
      select.id = "map-" + f.field;
      select.setAttribute("aria-label", "Column for " + f.field);
      const none = text("option", f.required ? "Choose a column" : "Not in the file");
      none.value = "";
      const choices = [none, ...headers.map((h) => {
        const option = text("option", h);
        option.value = h;
        return option;
      })];
      if (f.source && !headers.includes(f.source)) {
        const template = text("option", f.source);
        template.value = f.source;
        choices.push(template);
      }
      select.replaceChildren(...choices);
      select.value = f.source || "";
      select.addEventListener("change", () => {
        if (select.value) state.map[f.field] = select.value;
        else delete state.map[f.field];
        preview(state.delimiter);
      });
      const cell = document.createElement("td");
      cell.appendChild(select);
      tr.appendChild(cell);
      const input = document.createElement("input");
      input.type = "text";
      input.id = "template-" + f.field;
      input.setAttribute("aria-label", "Template for " + f.field);
      input.placeholder = "{column} text {column}";
      input.addEventListener("change", () => {
        if (input.value.trim()) {
          state.map[f.field] = input.value.trim();
          preview(state.delimiter);
        }
      });
      const templateCell = document.createElement("td");
      templateCell.appendChild(input);
      tr.appendChild(templateCell);
      tr.appendChild(text("td", firstValues(p, f.source), "muted"));
      if (f.required && !f.source) tr.className = "outcome-rejected";
      return tr;
    });
    $("columns-map").tBodies[0].replaceChildren(...rows);
    const missing = (p.fields || []).filter((f) => f.required && !f.source).map((f) => f.field);
    $("columns-missing").hidden = missing.length === 0;
    $("columns-missing").textContent = "Choose a column for " + missing.join(", ") + ": every line needs it.";
    $("next-5").disabled = missing.length > 0;
    $("saved-mapping").value = state.mapping;
    $("review-fields").textContent = "Fields read from: " + (p.fields || [])
      .filter((f) => f.source)
      .map((f) => f.field + " ← " + f.source)
      .join("; ") + ".";
  }

  function renderCounts(list, summary) {
    const items = [text("dt", "Lines"), text("dd", summary.rows)];
    for (const name of OUTCOMES) {
      const dd = text("dd", summary[name]);
      dd.dataset.count = name;
      items.push(text("dt", name, "outcome-" + name), dd);
    }
    list.replaceChildren(...items);
  }

  // The server sends one page of outcomes at a time, never the whole file's: another page
  // is the same preview again with a later offset.
  async function turnPage(by) {
    const page = state.page + by;
    // One page at a time: a second click while this one loads would count from the old page.
    $("review-prev").disabled = true;
    $("review-next").disabled = true;
    const answer = await call("/api/imports/preview?results_limit=" + PAGE + "&results_offset=" + page * PAGE +
      "&" + previewQuery(state.delimiter), state.bytes);
    if (answer.status !== 200) {
      fail(answer.json && answer.json.error ? answer.json.error.message : "The page could not be read (" + answer.status + ").");
      renderReview();
      return;
    }
    state.preview.results = answer.json.results;
    state.page = page;
    renderReview();
  }

  function renderReview() {
    const results = state.preview.results || [];
    const pages = Math.max(1, Math.ceil(state.preview.rows / PAGE));
    const rows = results.map((line) => {
      const tr = document.createElement("tr");
      tr.className = "outcome-" + line.outcome;
      tr.appendChild(text("td", line.line));
      tr.appendChild(text("td", line.user_email));
      tr.appendChild(text("td", line.account_address));
      tr.appendChild(text("td", line.outcome));
      tr.appendChild(text("td", line.field || ""));
      tr.appendChild(text("td", line.message));
      return tr;
    });
    $("review").tBodies[0].replaceChildren(...rows);
    $("review-page").textContent = "Page " + (state.page + 1) + " of " + pages;
    $("review-prev").disabled = state.page === 0;
    $("review-next").disabled = state.page >= pages - 1;
  }

  function renderImport() {
    const p = state.preview;
    const willApply = p.added + p.updated;
    $("import-summary").textContent = willApply + " account(s) will be added or updated, " +
      p.unchanged + " are unchanged, " + p.discarded + " line(s) name no known user and " +
      p.duplicates + " repeat an earlier line.";
    const rejected = p.rejected > 0;
    $("rejected-note").hidden = !rejected;
    $("rejected-note").textContent = p.rejected + " line(s) are rejected (see the review).";
    $("skip-label").hidden = !rejected;
    if (!rejected) $("skip-rejected").checked = false;
    $("import-button").disabled = rejected && !$("skip-rejected").checked;
  }

  $("review-prev").addEventListener("click", () => turnPage(-1));
  $("review-next").addEventListener("click", () => turnPage(1));
  $("skip-rejected").addEventListener("change", renderImport);
  $("delimiter").addEventListener("change", () => preview($("delimiter").value));
  $("saved-mapping").addEventListener("change", () => {
    state.mapping = $("saved-mapping").value;
    state.map = {};
    preview(state.delimiter);
  });
  $("sheet").addEventListener("change", () => {
    state.sheet = $("sheet").value;
    preview(null);
  });

  const browse = $("browse");
  browse.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      $("file").click();
    }
  });
  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    if (!file) return;
    state.file = file;
    $("file-name").textContent = file.name + " (" + file.size.toLocaleString() + " bytes)";
    state.bytes = new Uint8Array(await file.arrayBuffer());
    state.sheet = null;
    state.map = {};
    await preview(null);
  });

  const PUSH_STATES = ["queued", "sending", "sent", "acknowledged", "failed"];

  // The push card: what the import queued, then the queue's counts until nothing is
  // waiting or being sent.
  async function followPush(queued) {
    const card = $("push-card");
    const note = $("push-note");
    card.hidden = false;
    if (!queued || queued.error) {
      note.className = "alert error";
      note.textContent = "Nothing was pushed: " + (queued ? queued.error : "no answer");
      return;
    }
    if (queued.installs + queued.removals === 0) {
      note.textContent = "No device needs a new profile.";
      return;
    }
    note.textContent = queued.installs + " profile installs and " + queued.removals +
      " removals queued for devices.";
    for (;;) {
      const response = await fetch("/api/push/jobs?limit=1", { headers: { "Accept": "application/json" } });
      if (!response.ok) return;
      const status = await response.json();
      const items = [];
      for (const name of PUSH_STATES) {
        const dd = text("dd", status.jobs[name]);
        dd.dataset.count = name;
        items.push(text("dt", name, "push-" + name), dd);
      }
      $("push-counts").replaceChildren(...items);
      if (status.done) {
        note.textContent += status.jobs.failed > 0
          ? " Done, with failures: see All push jobs."
          : " Done.";
        return;
      }
      if (!status.worker) {
        note.textContent += " This server runs no push worker; jobs wait in the queue.";
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
  }

  $("import-button").addEventListener("click", async () => {
    const button = $("import-button");
    button.disabled = true;
    let url = "/api/imports?" + query(state.delimiter) +
      "&fingerprint=" + encodeURIComponent(state.preview.fingerprint);
    const saveAs = $("save-mapping").value.trim();
    if (saveAs) url += "&save_mapping=" + encodeURIComponent(saveAs);
    const answer = await call(url, state.bytes);
    const note = $("notification");
    const link = $("results-csv");
    if (answer.status === 201) {
      const r = answer.json;
      $("preview-again").hidden = true;
      note.className = "alert success";
      note.textContent = "Import complete: " + r.added + " added, " + r.updated + " updated, " +
        r.unchanged + " unchanged; " + r.discarded + " discarded, " + r.rejected + " rejected, " +
        r.duplicates + " duplicate.";
      renderCounts($("result-counts"), r);
      link.href = "/api/imports/" + encodeURIComponent(r.id) + "/results.csv";
      link.hidden = false;
      followPush(r.push);
    } else {
      const error = answer.json && answer.json.error;
      note.className = "alert error";
      note.textContent = "Import failed: " + (error ? error.message : "status " + answer.status);
      if (error && error.details) renderCounts($("result-counts"), error.details);
      else $("result-counts").replaceChildren();
      link.hidden = true;
      // The store moved on since the preview: the way forward is a fresh one.
      $("preview-again").hidden = !(error && error.code === "store_changed");
    }
    show(8);
  });

  $("preview-again").addEventListener("click", async () => {
    $("preview-again").hidden = true;
    await preview(state.delimiter);
    $("import-button").disabled = false;
    renderImport();
    show(6);
  });
})();
