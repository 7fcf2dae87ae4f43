// Learner aids of the browser editor: problems as you type (POST /diagnostics, squiggles and a
// list) and the code history (a timeline, a diff against the current code, restore).
// It follows editor.js through its engine:* events and window.engineEditor, and draws only
// inside #aids.
(function () {
  "use strict";

  const LINT_DEBOUNCE_MS = 400;
  const LINT_RETRY_MS = 1500;
  const RETRIED = ["busy", "timeout", "failed"];
  const HISTORY_REFRESH_MS = 1000;
  const HISTORY_PAGE = 50;
  // a line diff is quadratic: past this many cells the panel shows the revision without one
  const DIFF_MAX_CELLS = 4000000;
  const REASONS = { create: "created", typing: "typing", paste: "paste", run: "run", restore: "restore" };

  const host = document.getElementById("aids");
  const hooks = window.engineEditor;

  // a diagnostic of POST /diagnostics (1-based lines, 1-based UTF-16 columns: CodeMirror's units)
  // as the editor's problem shape; one that spans lines is underlined to the end of its first
  function asProblem(item) {
    return {
      line: item.line,
      column: item.column,
      endColumn: item.end_line === item.line ? item.end_column : undefined,
      severity: item.severity === "info" ? "info" : item.severity,
      message: item.code ? `${item.message} [${item.code}]` : item.message,
      source: item.source,
    };
  }
  if (!host || !hooks) return;

  host.innerHTML = `
    <div class="aids-head">
      <button type="button" id="problems-toggle" class="aids-tab" aria-expanded="true" aria-controls="problems">
        Problems <span id="problems-count" class="count">0</span>
      </button>
      <button type="button" id="history-toggle" class="aids-tab" aria-expanded="false" aria-controls="revisions-panel">History</button>
      <span id="lint-state" class="lint-state" role="status" aria-live="polite"></span>
    </div>
    <ul id="problems" class="problems" aria-label="Problems"></ul>
    <div id="revisions-panel" class="revisions-panel" hidden>
      <ol id="revisions" class="revisions" aria-label="Code history"></ol>
      <div class="revision-view">
        <div class="revision-head">
          <span id="revision-title" class="revision-title">Pick a revision to compare it with the current code.</span>
          <button type="button" id="restore" disabled>Restore</button>
        </div>
        <pre id="revision-diff" class="diff" tabindex="0"></pre>
      </div>
    </div>`;

  const $ = (id) => document.getElementById(id);
  const ui = {
    problemsToggle: $("problems-toggle"), problemsCount: $("problems-count"), problems: $("problems"),
    historyToggle: $("history-toggle"), lintState: $("lint-state"), panel: $("revisions-panel"),
    revisions: $("revisions"), title: $("revision-title"), restore: $("restore"), diff: $("revision-diff"),
  };
  // the list shows the last run's errors (editor.js parses them) above the linter's findings
  const state = { lintTimer: null, lintSeq: 0, refreshTimer: null, selected: null, diffTimer: null, lint: [], note: "", run: [] };

  async function api(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: { Accept: "application/json", ...(body !== undefined ? { "Content-Type": "application/json" } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const error = new Error((data && data.message) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // ---- problems ----------------------------------------------------------------------------

  const UNCHECKED = {
    unavailable: "No checker for this language here.",
    timeout: "The checker gave up on this code.",
    failed: "The checker could not read this code.",
    busy: "Checks are busy; will retry as you type.",
  };

  function scheduleLint(delay, retry) {
    clearTimeout(state.lintTimer);
    state.lintTimer = setTimeout(() => lint(retry), delay === undefined ? LINT_DEBOUNCE_MS : delay);
  }

  async function lint(retry) {
    const session = hooks.session;
    if (!session) return;
    const seq = ++state.lintSeq;
    const code = hooks.editor.getCode();
    let answer;
    try {
      answer = await api("POST", "/diagnostics", { language: session.language, source_code: code });
    } catch (error) {
      if (seq !== state.lintSeq) return;
      window.LiveEditor.setProblems("diagnostics", []);
      showLint([], error.status === 413 ? "Too long to check as you type." : "Checks are unavailable right now.");
      return;
    }
    // an answer for text the learner has changed since would put squiggles in the wrong places
    if (seq !== state.lintSeq || hooks.editor.getCode() !== code) return;
    window.LiveEditor.setProblems("diagnostics", answer.diagnostics.map(asProblem));
    showLint(answer.diagnostics, answer.status === "ok" ? "" : UNCHECKED[answer.status] || "");
    ui.lintState.dataset.status = answer.status;
    // a busy or slow moment passes: check the same text again once, unless the learner types first
    if (RETRIED.includes(answer.status) && !retry) scheduleLint(LINT_RETRY_MS, true);
  }

  function showLint(items, note) {
    state.lint = items;
    state.note = note;
    showProblems();
  }

  function showProblems() {
    const runErrors = state.run.filter((item) => item.severity === "error").map((item) => ({ ...item, source: "last run" }));
    const items = [...runErrors, ...state.lint];
    const note = state.note;
    ui.problems.textContent = "";
    ui.problemsCount.textContent = String(items.length);
    ui.problemsCount.dataset.severity = items.some((d) => d.severity === "error") ? "error" : items.length ? "warning" : "";
    ui.lintState.textContent = note;
    for (const item of items) {
      const li = document.createElement("li");
      li.dataset.severity = item.severity;
      const button = document.createElement("button");
      button.type = "button";
      const where = document.createElement("span");
      where.className = "where";
      where.textContent = item.column ? `${item.line}:${item.column}` : `${item.line}`;
      const message = document.createElement("span");
      message.className = "message";
      message.textContent = item.message;
      const code = document.createElement("span");
      code.className = "code";
      code.textContent = [item.code, item.source].filter(Boolean).join(" · ");
      button.append(where, message, code);
      button.addEventListener("click", () => hooks.editor.goTo(item.line, item.column));
      li.appendChild(button);
      ui.problems.appendChild(li);
    }
  }

  // ---- history -----------------------------------------------------------------------------

  function historyOpen() {
    return !ui.panel.hidden;
  }

  function toggleHistory() {
    ui.panel.hidden = !ui.panel.hidden;
    ui.historyToggle.setAttribute("aria-expanded", String(historyOpen()));
    if (historyOpen()) loadRevisions();
  }

  function toggleProblems() {
    ui.problems.hidden = !ui.problems.hidden;
    ui.problemsToggle.setAttribute("aria-expanded", String(!ui.problems.hidden));
  }

  function refreshSoon() {
    if (!historyOpen()) return;
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(loadRevisions, HISTORY_REFRESH_MS);
  }

  function formatSize(bytes) {
    return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
  }

  async function loadRevisions() {
    const session = hooks.session;
    if (!session) return;
    let page;
    try {
      page = await api("GET", `/code-sessions/${session.session_id}/revisions?limit=${HISTORY_PAGE}`);
    } catch (error) {
      return;
    }
    ui.revisions.textContent = "";
    for (const revision of page) {
      const li = document.createElement("li");
      li.dataset.revision = String(revision.revision);
      li.dataset.reason = revision.reason;
      if (state.selected && state.selected.revision === revision.revision) li.classList.add("selected");
      const button = document.createElement("button");
      button.type = "button";
      const reason = document.createElement("span");
      reason.className = "reason";
      reason.dataset.reason = revision.reason;
      reason.textContent = REASONS[revision.reason] || revision.reason;
      const when = document.createElement("span");
      when.className = "when";
      when.textContent = new Date(revision.created_at).toLocaleTimeString();
      const size = document.createElement("span");
      size.className = "size";
      size.textContent = `#${revision.revision} · ${formatSize(revision.size_bytes)}`;
      button.append(reason, when, size);
      button.addEventListener("click", () => select(revision.revision));
      li.appendChild(button);
      ui.revisions.appendChild(li);
    }
  }

  async function select(number) {
    const session = hooks.session;
    const revision = await api("GET", `/code-sessions/${session.session_id}/revisions/${number}`);
    state.selected = revision;
    for (const li of ui.revisions.children) li.classList.toggle("selected", li.dataset.revision === String(number));
    ui.title.textContent = `#${revision.revision} (${REASONS[revision.reason] || revision.reason}, ${new Date(revision.created_at).toLocaleString()}) against the current code`;
    ui.restore.disabled = false;
    showDiff();
  }

  // the lines of `before` and `after` as unchanged (" "), removed ("-") and added ("+"), by LCS
  function lineDiff(before, after) {
    const a = before.split("\n");
    const b = after.split("\n");
    if (a.length * b.length > DIFF_MAX_CELLS) return null;
    const width = b.length + 1;
    const lengths = new Uint32Array((a.length + 1) * width);
    for (let i = a.length - 1; i >= 0; i--) {
      for (let j = b.length - 1; j >= 0; j--) {
        lengths[i * width + j] = a[i] === b[j] ? lengths[(i + 1) * width + j + 1] + 1 : Math.max(lengths[(i + 1) * width + j], lengths[i * width + j + 1]);
      }
    }
    const out = [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      if (i < a.length && j < b.length && a[i] === b[j]) {
        out.push([" ", a[i++]]);
        j++;
      } else if (i < a.length && (j >= b.length || lengths[(i + 1) * width + j] >= lengths[i * width + j + 1])) {
        // removed lines before the added ones that replace them, as diff prints them
        out.push(["-", a[i++]]);
      } else {
        out.push(["+", b[j++]]);
      }
    }
    return out;
  }

  function showDiff() {
    const revision = state.selected;
    if (!revision) return;
    ui.diff.textContent = "";
    const lines = lineDiff(revision.source_code, hooks.editor.getCode());
    if (lines === null) {
      ui.diff.textContent = revision.source_code;
      return;
    }
    if (lines.every(([mark]) => mark === " ")) {
      ui.diff.dataset.same = "true";
    } else {
      delete ui.diff.dataset.same;
    }
    for (const [mark, text] of lines) {
      const span = document.createElement("span");
      span.className = mark === "+" ? "added" : mark === "-" ? "removed" : "same";
      span.textContent = `${mark} ${text}\n`;
      ui.diff.appendChild(span);
    }
  }

  async function restore() {
    const revision = state.selected;
    if (!revision) return;
    ui.restore.disabled = true;
    try {
      // the restore is based on the stored version: store the editor's edits first
      await hooks.save();
      if (hooks.conflict) throw new Error("Resolve the conflict before restoring.");
      const session = hooks.session;
      const saved = await api("POST", `/code-sessions/${session.session_id}/revisions/${revision.revision}/restore`, { version: session.version });
      hooks.adopt(saved);
      ui.title.textContent = `Restored #${revision.revision} as version ${saved.version}.`;
      state.selected = null;
      ui.diff.textContent = "";
      await loadRevisions();
    } catch (error) {
      ui.title.textContent = error.status === 409
        ? "The session changed elsewhere (another tab?); reload it, then restore."
        : `Could not restore: ${error.message}`;
      ui.restore.disabled = false;
    }
  }

  // ---- wiring ------------------------------------------------------------------------------

  ui.problemsToggle.addEventListener("click", toggleProblems);
  ui.historyToggle.addEventListener("click", toggleHistory);
  ui.restore.addEventListener("click", restore);
  document.addEventListener("engine:change", () => {
    scheduleLint();
    if (state.selected) {
      clearTimeout(state.diffTimer);
      state.diffTimer = setTimeout(showDiff, LINT_DEBOUNCE_MS);
    }
  });
  document.addEventListener("engine:session", () => {
    scheduleLint(0);
    refreshSoon();
  });
  document.addEventListener("engine:saved", refreshSoon);
  document.addEventListener("engine:problems", (event) => {
    if (event.detail.source !== "run") return;
    state.run = event.detail.problems;
    showProblems();
  });
  // a run pins the revision it ran: the timeline shows it
  const run = document.getElementById("run");
  if (run) run.addEventListener("click", refreshSoon);
})();
