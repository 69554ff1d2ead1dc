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

// A user's profile preview follows the platform chosen, with no Show to press: the redacted
// profile comes from the API the page's own form would reload it from.
(function () {
  const form = document.getElementById("preview-form");
  if (!form) return;
  const select = document.getElementById("platform");
  document.getElementById("preview-show").hidden = true;
  let asked = 0;
  select.addEventListener("change", async () => {
    const platform = select.value;
    const ask = ++asked;
    const response = await fetch("/api/users/" + form.dataset.user + "/profile?redact=true&platform=" +
      encodeURIComponent(platform));
    const body = await response.text();
    // An answer to an earlier choice that arrives late is not shown.
    if (ask !== asked) return;
    let shown;
    if (response.ok) {
      shown = document.createElement("pre");
      shown.className = "profile";
      shown.tabIndex = 0;
      shown.textContent = body;
    } else {
      shown = document.createElement("p");
      shown.className = "alert";
      let message = "The profile could not be shown (status " + response.status + ").";
      try { message = JSON.parse(body).error.message; } catch (_) { /* not the API's error */ }
      shown.textContent = message;
    }
    shown.id = "profile";
    document.getElementById("profile").replaceWith(shown);
    history.replaceState(null, "", "?platform=" + encodeURIComponent(platform));
  });
})();

(function () {
  const wizard = document.getElementById("wizard");
  if (!wizard) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const DELIMITERS = { ",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe" };
  const TYPES = { email: "Email", exchange: "Mail for Exchange" };
  const PAGE = 50;
  const OUTCOMES = ["added", "updated", "unchanged", "discarded", "rejected", "duplicates"];
  // The review's filters: the value the preview takes (results_outcome), its name, and the
  // count of the summary it shows.
  const problemCount = (p) => p.discarded + p.rejected + p.duplicates;
  const FILTERS = [
    ["problems", "Problems", problemCount],
    ["all", "All lines", (p) => p.rows],
    ["added", "Added", (p) => p.added],
    ["updated", "Updated", (p) => p.updated],
    ["unchanged", "Unchanged", (p) => p.unchanged],
    ["discarded", "Discarded", (p) => p.discarded],
    ["rejected", "Rejected", (p) => p.rejected],
    ["duplicate", "Duplicate", (p) => p.duplicates],
  ];
  const state = { type: "email", file: null, bytes: null, delimiter: null, sheet: null, preview: null, page: 0,
    filter: "all", map: {}, mapping: "", mappings: [], previews: 0 };

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

  // Another account type: its own fields, so no mapping of the last one's carries over.
  function chooseType(type) {
    state.type = type;
    $("type-" + type).checked = true;
    for (const block of wizard.querySelectorAll(".columns")) {
      block.hidden = block.dataset.type !== state.type;
    }
    state.map = {};
    state.mapping = "";
    offerMappings();
  }

  for (const radio of document.querySelectorAll('input[name="account-type"]')) {
    radio.addEventListener("change", () => {
      chooseType(radio.value);
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

  // Sends the file as a form's file field, so that the import is recorded under its name.
  async function call(url) {
    const form = new FormData();
    form.append("file", new Blob([state.bytes]), state.file.name);
    const response = await fetch(url, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      body: form,
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

  // One page of the review: the lines the filter admits, from the page's first on. A
  // preview of a file whose headers are not ours still answers, every line rejected for the
  // fields it lacks, so that the Columns step can offer its columns.
  function reviewQuery(filter, page, limit) {
    return "/api/imports/preview?results_outcome=" + filter + "&results_limit=" + limit +
      "&results_offset=" + page * limit + "&" + query(state.delimiter) + "&missing_columns=reject";
  }

  // A file that reads as the other account type: the offer to switch to it.
  function offerType(other) {
    $("other-type").hidden = !other;
    if (!other) return;
    $("other-type-text").textContent = "This looks like a " + TYPES[other] +
      " file, not " + (state.type === "email" ? "an " : "a ") + TYPES[state.type] + " one.";
    $("switch-type").textContent = "Switch to " + TYPES[other] + " and preview again";
    $("switch-type").dataset.type = other;
  }

  // Each choice previews anew; only the answer to the latest request is shown, so that
  // quick choices never leave an older answer on the page. While one is awaited the wizard
  // is marked busy (data-previewing).
  async function preview(delimiter) {
    $("wizard-error").hidden = true;
    state.delimiter = delimiter;
    const ticket = ++state.previews;
    wizard.dataset.previewing = "true";
    const answer = await call(reviewQuery("problems", 0, PAGE));
    if (ticket !== state.previews) return;
    if (answer.status !== 200) {
      delete wizard.dataset.previewing;
      const error = answer.json && answer.json.error;
      fail(error ? error.message : "The preview failed (" + answer.status + ").");
      offerType(error && error.details && error.details.other_type);
      $("next-3").disabled = true;
      return;
    }
    let p = answer.json;
    offerType(p.other_type);
    state.delimiter = DELIMITERS[p.delimiter] || "comma";
    // A spreadsheet file: the sheet read is the one every later request names.
    state.sheet = p.sheet || null;
    state.page = 0;
    // Problems first, when there are any; else every line, which takes a second look at
    // the file: which one the review starts with is known only once the file is read.
    state.filter = problemCount(p) > 0 ? "problems" : "all";
    if (state.filter === "all") {
      const all = await call(reviewQuery("all", 0, PAGE));
      if (ticket !== state.previews) return;
      if (all.status === 200) p = all.json;
    }
    delete wizard.dataset.previewing;
    state.preview = p;
    render();
  }

  // Lines the server found of the wrong width, among those it lists: most of them means the
  // file was split on the wrong delimiter, which is easier to fix here than in the review.
  // A file of the other account type has its own offer instead.
  function warnWidth(p) {
    const wrong = (p.lines || []).filter((l) => /^expected \d+ columns, found \d+/.test(l.message));
    const listed = Math.min(p.rows, 100);
    const warning = $("delimiter-warning");
    warning.hidden = !(listed > 0 && wrong.length * 2 > listed) || Boolean(p.other_type);
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
    renderFilters();
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

  // What each column of the file is read as: its header (or its position) → the field.
  function columnHeading(c, i) {
    const th = document.createElement("th");
    th.scope = "col";
    th.appendChild(text("span", c.header != null ? c.header : "column " + (i + 1), "file-header"));
    th.appendChild(text("span", " →\u00a0" + (c.column || "ignored"), c.column ? "field" : "field ignored"));
    return th;
  }

  function renderColumns(p) {
    const table = $("columns-table");
    const head = document.createElement("tr");
    head.appendChild(text("th", "Line"));
    head.firstChild.scope = "col";
    p.columns.forEach((c, i) => head.appendChild(columnHeading(c, i)));
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

  // The Columns step: each field with the column (or template) it is read from.
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

  // The counts, each a button that shows only its lines.
  function renderFilters() {
    const p = state.preview;
    const buttons = FILTERS.map(([filter, name, count]) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "filter outcome-" + filter;
      button.dataset.filter = filter;
      button.setAttribute("aria-pressed", String(filter === state.filter));
      button.appendChild(text("span", name, "name"));
      const n = text("span", count(p).toLocaleString(), "n");
      n.dataset.count = filter === "all" ? "rows" : filter === "duplicate" ? "duplicates" : filter;
      button.appendChild(n);
      button.addEventListener("click", () => filterBy(filter));
      return button;
    });
    $("review-counts").replaceChildren(...buttons);
    // The problem lines are cut out of the text of a CSV file; a spreadsheet has none.
    $("problems-box").hidden = problemCount(p) === 0 || Boolean(p.format);
  }

  function filterBy(filter) {
    state.filter = filter;
    for (const button of $("review-counts").querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.filter === filter));
    }
    turnPage(-state.page);
  }

  function renderCounts(list, summary) {
    const pair = (name, value, className) => {
      const div = document.createElement("div");
      const dd = text("dd", value);
      dd.dataset.count = name;
      div.append(text("dt", name === "rows" ? "Lines" : name, className), dd);
      return div;
    };
    const items = [pair("rows", summary.rows)];
    for (const name of OUTCOMES) items.push(pair(name, summary[name], "outcome-" + name));
    list.replaceChildren(...items);
  }

  // The server sends one page of outcomes at a time, never the whole file's: another page
  // is the same preview again with a later offset.
  async function turnPage(by) {
    const page = state.page + by;
    // One page at a time: a second click while this one loads would count from the old page.
    $("review-prev").disabled = true;
    $("review-next").disabled = true;
    const answer = await call(reviewQuery(state.filter, page, PAGE));
    if (answer.status !== 200) {
      fail(answer.json && answer.json.error ? answer.json.error.message : "The page could not be read (" + answer.status + ").");
      renderReview();
      return;
    }
    state.preview.results = answer.json.results;
    state.page = page;
    renderReview();
  }

  // The cells of a review line, by column; the field a rejected line is blamed on marks
  // the cell that holds it.
  const REVIEW_COLUMNS = [
    ["Line", (l) => l.line],
    ["User", (l) => l.user_email, ["user_email"]],
    ["Account", (l) => l.account_address, ["email_address", "exchange_email"]],
    ["Outcome", (l) => l.outcome],
    ["Field", (l) => l.field || ""],
    ["Reason", (l) => l.message],
  ];

  function renderReview() {
    const results = state.preview.results || [];
    const shown = FILTERS.find(([filter]) => filter === state.filter);
    const total = shown[2](state.preview);
    const pages = Math.max(1, Math.ceil(total / PAGE));
    const rows = results.map((line) => {
      const tr = document.createElement("tr");
      tr.className = "outcome-" + line.outcome;
      for (const [label, value, fields] of REVIEW_COLUMNS) {
        const td = document.createElement("td");
        td.dataset.label = label;
        const atFault = fields && line.outcome === "rejected" && fields.includes(line.field);
        td.appendChild(atFault ? text("span", value(line), "at-fault") : document.createTextNode(value(line)));
        tr.appendChild(td);
      }
      return tr;
    });
    if (rows.length === 0) {
      const td = text("td", "No lines to show here.", "empty");
      td.colSpan = REVIEW_COLUMNS.length;
      rows.push(document.createElement("tr"));
      rows[0].appendChild(td);
    }
    $("review").tBodies[0].replaceChildren(...rows);
    $("review-shown").textContent = shown[1] + ": " + total.toLocaleString() +
      (total === 1 ? " line" : " lines") + ".";
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

  // The problem lines as a file to fix and import again: the file's own lines, cut out of
  // the copy this browser holds, so the values are exactly as the admin wrote them, password
  // cells included, without the server ever sending a password back. The server only says
  // which lines they are (a page of line numbers at a time).
  async function problemLineNumbers() {
    const numbers = [];
    for (let page = 0; ; page += 1) {
      const answer = await call(reviewQuery("problems", page, 1000));
      if (answer.status !== 200) throw new Error(answer.json && answer.json.error ? answer.json.error.message : "status " + answer.status);
      for (const line of answer.json.results) numbers.push(line.line);
      $("problems-status").textContent = "Found " + numbers.length.toLocaleString() + " problem lines…";
      if (answer.json.results.length < 1000) return numbers;
    }
  }

  // Where each physical line of `text` starts, counting a line break as the server does:
  // CRLF, LF or a lone CR.
  function lineStarts(text) {
    const starts = [0];
    for (let i = 0; i < text.length; i += 1) {
      const c = text.charCodeAt(i);
      if (c === 13 && text.charCodeAt(i + 1) === 10) i += 1;
      if (c === 13 || c === 10) starts.push(i + 1);
    }
    return starts;
  }

  // Where the record that starts at `start` ends (before its line break): the first line
  // break outside a quoted cell, a quote opening a cell only at the cell's start, as the
  // server's CSV reader reads it.
  function recordEnd(text, start, delimiter) {
    let quoted = false;
    let fieldStart = true;
    for (let i = start; i < text.length; i += 1) {
      const c = text[i];
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') i += 1;
          else quoted = false;
        }
      } else if (c === "\r" || c === "\n") {
        return i;
      } else if (c === delimiter) {
        fieldStart = true;
        continue;
      } else if (c === '"' && fieldStart) {
        quoted = true;
      }
      fieldStart = false;
    }
    return text.length;
  }

  function encoded(text, encoding) {
    // UTF-16 files stay UTF-16 (with the byte-order mark that says so); anything else is
    // written as UTF-8 with a byte-order mark, which both Excel and the import read.
    if (encoding.startsWith("utf-16")) {
      const bytes = new DataView(new ArrayBuffer(2 + text.length * 2));
      bytes.setUint16(0, 0xfeff, true);
      for (let i = 0; i < text.length; i += 1) bytes.setUint16(2 + i * 2, text.charCodeAt(i), true);
      return bytes.buffer;
    }
    return new Blob(["\ufeff" + text]);
  }

  async function downloadProblems() {
    const button = $("problems-download");
    button.disabled = true;
    const p = state.preview;
    try {
      const numbers = await problemLineNumbers();
      const text = new TextDecoder(p.encoding).decode(state.bytes);
      const starts = lineStarts(text);
      // What comes before the first record (a sep= line, the header) comes along, so the
      // file reads as the original does.
      const first = p.sample.length > 0 ? p.sample[0].line : 1;
      const lines = [];
      const before = text.slice(0, starts[first - 1]).replace(/[\r\n]+$/, "");
      if (before.trim() !== "") lines.push(before);
      for (const number of numbers) {
        const start = starts[number - 1];
        lines.push(text.slice(start, recordEnd(text, start, p.delimiter)));
      }
      const file = new Blob([encoded(lines.join("\r\n") + "\r\n", p.encoding)], { type: "text/csv" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(file);
      link.download = state.file.name.replace(/\.[^.]*$/, "") + "-problem-lines.csv";
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
      $("problems-status").textContent = "Downloaded " + numbers.length.toLocaleString() +
        (numbers.length === 1 ? " problem line" : " problem lines") + " as " + link.download + ".";
    } catch (e) {
      $("problems-status").textContent = "The problem lines could not be read: " + e.message;
    }
    button.disabled = false;
  }

  $("review-prev").addEventListener("click", () => turnPage(-1));
  $("review-next").addEventListener("click", () => turnPage(1));
  $("problems-download").addEventListener("click", downloadProblems);
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
  $("switch-type").addEventListener("click", async () => {
    chooseType($("switch-type").dataset.type);
    await preview(null);
  });

  // The file input itself stays hidden (and out of the tab order): a button opens it.
  $("browse").addEventListener("click", () => $("file").click());
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
    // A replacement (a Windows device's accounts deleted and added again, unchanged ones
    // too) is named as such, not counted as a removal.
    const changes = [[queued.installs, "profile install"], [queued.removals, "removal"],
      [queued.replacements, "replacement"]]
      .filter(([n]) => n > 0)
      .map(([n, what]) => n.toLocaleString() + " " + what + (n === 1 ? "" : "s"));
    if (changes.length === 0) {
      note.textContent = "No device needs a new profile.";
      return;
    }
    const last = changes.pop();
    note.textContent = (changes.length ? changes.join(", ") + " and " + last : last) +
      " queued for devices.";
    for (;;) {
      // Only this import's jobs: the rest of the queue is on the Push jobs page.
      const response = await fetch("/api/push/jobs?limit=1&batch=" + encodeURIComponent(queued.batch),
        { headers: { "Accept": "application/json" } });
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
    const answer = await call(url);
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
