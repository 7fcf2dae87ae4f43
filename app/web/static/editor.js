// The browser editor: a code session with autosave, runs with live output, and the run history.
// It uses only the public API (see /docs). The components are the vendored bundle (CodeMirror,
// xterm.js), problems.js (results in words, errors as lines) and output.js (the output pane).
//
// Panels added later (graded runs, diagnostics, revisions) hook in through window.LiveEditor:
//   LiveEditor.on("session" | "language" | "run-started" | "run-finished" | "output", handler)
//   LiveEditor.setProblems(source, problems)  // gutter markers, merged across sources
//   LiveEditor.api(method, path, body), LiveEditor.editor, LiveEditor.output, LiveEditor.session()
(function () {
  "use strict";

  const SAVE_DEBOUNCE_MS = 600;
  const SAVE_RETRY_MS = 3000;
  const HISTORY_LIMIT = 10;
  const TICK_MS = 100;
  // each language's starting code, as GET /languages gives it
  const TEMPLATES = {};
  // names for people when /languages gives none (display_name): the language and its toolchain
  const DISPLAY = {
    python: (v) => `Python ${majorMinor(v)}`,
    javascript: (v) => `JavaScript (Node.js ${major(v)})`,
    typescript: (v) => `TypeScript ${majorMinor(v)}`,
    c: (v) => `C (gcc ${major(v)})`,
    cpp: (v) => `C++17 (g++ ${major(v)})`,
    java: (v) => `Java ${major(v)}`,
  };
  const SHORT = {
    python: "Python", javascript: "JavaScript", typescript: "TypeScript", c: "C", cpp: "C++", java: "Java",
    go: "Go", rust: "Rust", ruby: "Ruby", php: "PHP", csharp: "C#", bash: "Bash", sql: "SQL",
  };

  function major(version) {
    return String(version || "").split(".")[0];
  }

  function majorMinor(version) {
    return String(version || "").split(".").slice(0, 2).join(".");
  }

  const $ = (id) => document.getElementById(id);
  const ui = {
    language: $("language"), limits: $("limits"), save: $("save-state"), run: $("run"), stop: $("stop"), newSession: $("new-session"),
    conflict: $("conflict"), conflictReload: $("conflict-reload"), conflictOverwrite: $("conflict-overwrite"),
    conflictTheirs: $("conflict-theirs"), conflictTheirsCode: $("conflict-theirs-code"),
    switchBanner: $("switch-language"), switchText: $("switch-language-text"), switchKeep: $("switch-keep"),
    switchTemplate: $("switch-template"), switchCancel: $("switch-cancel"),
    notice: $("notice"), stdinBox: $("stdin-box"), stdin: $("stdin"), stdinSummary: $("stdin-summary"), inputHint: $("input-hint"),
    status: $("status"), verdict: $("verdict"), time: $("time"),
    output: $("output"), dropped: $("dropped"), truncated: $("truncated"), error: $("error"), history: $("history"), sessionId: $("session-id"),
    pastRun: $("past-run"), pastRunTitle: $("past-run-title"), pastRunCode: $("past-run-code"), pastRunStdinBox: $("past-run-stdin-box"),
    pastRunStdin: $("past-run-stdin"), pastRunRestore: $("past-run-restore"), pastRunClose: $("past-run-close"),
  };

  const state = {
    session: null, // {session_id, language, version}
    languages: {}, // name -> the /languages entry
    editor: null,
    output: null,
    dirty: false, // edits not yet sent
    saving: null, // the PATCH in flight (a promise)
    conflict: false,
    saveTimer: null,
    pasted: false, // a paste since the last PATCH: that save starts a revision of its own
    run: null, // {executionId, source, chunks: {stdout, stderr}, interactive}
    tick: null,
    retryTimer: null,
    interactive: null, // null: not known yet whether the engine takes interactive runs
    problems: {}, // source -> problems, merged into the editor's markers
    pastRunCode: null,
  };

  // ---- hooks for panels ------------------------------------------------------------------------

  const listeners = {};

  // panels follow the editor through LiveEditor.on(name) handlers, or as document events
  // named engine:<name> (aids.js: session, change, saved)
  function emit(name, detail) {
    document.dispatchEvent(new CustomEvent(`engine:${name}`, { detail }));
    for (const handler of listeners[name] || []) {
      try {
        handler(detail);
      } catch (error) {
        console.error(`a ${name} handler failed`, error);
      }
    }
  }

  function setProblems(source, problems) {
    state.problems[source] = problems || [];
    state.editor.setProblems(Object.values(state.problems).flat());
    // the problems list (aids.js) shows a run's errors beside the linter's
    emit("problems", { source, problems: state.problems[source] });
  }

  // ---- the API -------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body, headers) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
      this.retryAfter = headers ? Number(headers.get("Retry-After")) || null : null;
    }
  }

  async function api(method, path, body, headers) {
    const response = await fetch(path, {
      method,
      headers: { Accept: "application/json", ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = { message: text.slice(0, 200) };
    }
    if (!response.ok) throw new ApiError(response.status, data, response.headers);
    return data;
  }

  function notice(text) {
    ui.notice.textContent = text || "";
    ui.notice.hidden = !text;
  }

  // ---- saving ------------------------------------------------------------------------------

  const SAVE_LABELS = { loading: "Loading…", saved: "Saved", dirty: "Unsaved changes", saving: "Saving…", conflict: "Conflict", error: "Not saved (offline?) – retrying" };

  function showSave(name, detail) {
    ui.save.dataset.state = name;
    ui.save.textContent = detail ? `${SAVE_LABELS[name]} · ${detail}` : SAVE_LABELS[name];
  }

  function edited(text, change) {
    if (change && change.paste) state.pasted = true;
    emit("change");
    state.dirty = true;
    if (state.conflict) return;
    showSave("dirty");
    clearTimeout(state.saveTimer);
    state.saveTimer = setTimeout(() => save().catch(() => {}), SAVE_DEBOUNCE_MS);
  }

  function showConflict() {
    state.conflict = true;
    ui.conflict.hidden = false;
    ui.conflictTheirs.hidden = true;
    ui.conflictOverwrite.textContent = "Keep mine";
    delete ui.conflictOverwrite.dataset.confirm;
    showSave("conflict");
  }

  // send what is unsaved, one PATCH at a time; resolves when the editor's text is stored (or cannot be)
  async function save(force) {
    clearTimeout(state.saveTimer);
    if (state.saving) {
      await state.saving.catch(() => {});
      return state.dirty ? save(force) : undefined;
    }
    if (!state.dirty || (state.conflict && !force)) return;
    const code = state.editor.getCode();
    state.dirty = false;
    showSave("saving");
    const body = { source_code: code };
    if (!force) body.version = state.session.version;
    if (state.pasted) body.reason = "paste";
    state.pasted = false;
    state.saving = api("PATCH", `/code-sessions/${state.session.session_id}`, body);
    try {
      const saved = await state.saving;
      state.session.version = saved.version;
      state.conflict = false;
      ui.conflict.hidden = true;
      showSave(state.dirty ? "dirty" : "saved", `v${saved.version}`);
      emit("saved", { version: saved.version });
    } catch (error) {
      state.dirty = true;
      if (error.status === 409) {
        showConflict();
      } else {
        showSave("error");
        state.saveTimer = setTimeout(() => save().catch(() => {}), SAVE_RETRY_MS);
      }
      throw error;
    } finally {
      state.saving = null;
    }
    if (state.dirty) return save();
  }

  async function reloadTheirs() {
    const session = await api("GET", `/code-sessions/${state.session.session_id}`);
    state.conflict = false;
    state.dirty = false;
    ui.conflict.hidden = true;
    adopt(session);
    showSave("saved");
  }

  // first shows what would be lost (the other tab's text); the second click overwrites it
  async function keepMine() {
    if (!ui.conflictOverwrite.dataset.confirm) {
      try {
        const theirs = await api("GET", `/code-sessions/${state.session.session_id}`);
        ui.conflictTheirsCode.textContent = theirs.source_code || "(empty)";
        ui.conflictTheirs.hidden = false;
        ui.conflictTheirs.open = true;
        ui.conflictOverwrite.dataset.confirm = "yes";
        ui.conflictOverwrite.textContent = "Overwrite theirs with mine";
        return;
      } catch (error) {
        notice(`Could not read the other version: ${error.message}`);
        return;
      }
    }
    state.conflict = false;
    ui.conflict.hidden = true;
    state.dirty = true;
    await save(true).catch(() => {});
  }

  // ---- session -----------------------------------------------------------------------------

  function adopt(session) {
    state.session = { session_id: session.session_id, language: session.language, version: session.version };
    ui.sessionId.textContent = session.session_id;
    ui.language.value = session.language;
    state.editor.setLanguage(session.language);
    if (state.editor.getCode() !== session.source_code) state.editor.setCode(session.source_code);
    state.output.sourceFile = sourceFile(session.language);
    showLimits(session.language);
    const url = new URL(window.location.href);
    if (url.searchParams.get("session") !== session.session_id || url.searchParams.has("language")) {
      url.searchParams.set("session", session.session_id);
      url.searchParams.delete("language");
      window.history.replaceState(null, "", url);
    }
    loadStdin();
    emit("session", session);
  }

  // what a run of this language may use, said next to the picker ("main.py · 5 s · 256 MiB")
  function showLimits(language) {
    const entry = state.languages[language];
    const limits = entry && entry.limits;
    const parts = [];
    if (entry && entry.source_file) parts.push(entry.source_file);
    if (limits && limits.timeout_seconds) parts.push(`${limits.timeout_seconds} s`);
    if (limits && limits.memory_bytes) parts.push(`${Math.round(limits.memory_bytes / (1024 * 1024))} MiB`);
    ui.limits.textContent = parts.join(" · ");
    ui.limits.title = parts.length ? "the file your code runs as, and the time and memory each run may use" : "";
  }

  function sourceFile(language) {
    const entry = state.languages[language];
    return entry && entry.source_file ? entry.source_file : null;
  }

  async function openSession() {
    const url = new URL(window.location.href);
    const wanted = url.searchParams.get("session");
    if (wanted) {
      try {
        return await api("GET", `/code-sessions/${encodeURIComponent(wanted)}`);
      } catch (error) {
        if (error.status !== 404) throw error;
        notice(`Session ${wanted} does not exist (deleted?); this is a new one.`);
      }
    }
    // "New" passes the language it was pressed in
    const asked = url.searchParams.get("language");
    const language = asked && state.languages[asked] ? asked : ui.language.value || "python";
    return api("POST", "/code-sessions", { language, source_code: TEMPLATES[language] || "" });
  }

  // the language picker: a buffer still holding starter code follows the new language at once;
  // real code is never replaced or kept silently: the learner chooses
  function changeLanguage() {
    const language = ui.language.value;
    const previous = state.session.language;
    const code = state.editor.getCode();
    if (!code.trim() || Object.values(TEMPLATES).includes(code)) {
      applyLanguage(language, TEMPLATES[language] || "");
      return;
    }
    ui.language.value = previous;
    ui.switchBanner.dataset.language = language;
    ui.switchText.textContent = `Switch to ${displayName(language)}? Your ${SHORT[previous] || previous} code is still in the editor; it will not run as ${SHORT[language] || language}.`;
    ui.switchTemplate.textContent = `Start from the ${SHORT[language] || language} template (replaces your code)`;
    ui.switchBanner.hidden = false;
  }

  async function applyLanguage(language, sourceCode) {
    ui.switchBanner.hidden = true;
    const previous = state.session.language;
    const body = { language };
    if (sourceCode !== undefined) body.source_code = sourceCode;
    try {
      await save();
      body.version = state.session.version;
      const saved = await api("PATCH", `/code-sessions/${state.session.session_id}`, body);
      adopt(saved);
      setProblems("run", []);
      showSave("saved");
      emit("language", language);
    } catch (error) {
      ui.language.value = previous;
      if (error.status === 409) showConflict();
      else notice(`Could not change the language: ${error.message}`);
    }
  }

  function displayName(name) {
    const entry = state.languages[name] || {};
    if (entry.display_name) return entry.display_name;
    const make = DISPLAY[name];
    return make && entry.version ? make(entry.version) : entry.version ? `${name} ${entry.version}` : name;
  }

  // ---- input -------------------------------------------------------------------------------

  function stdinKey() {
    return `live-code:stdin:${state.session.session_id}`;
  }

  function loadStdin() {
    let saved = "";
    try {
      saved = localStorage.getItem(stdinKey()) || "";
    } catch (error) {
      // storage off (private mode): the box starts empty
    }
    ui.stdin.value = saved;
    if (saved) ui.stdinBox.open = true;
    summarizeStdin();
  }

  function storeStdin() {
    try {
      if (ui.stdin.value) localStorage.setItem(stdinKey(), ui.stdin.value);
      else localStorage.removeItem(stdinKey());
    } catch (error) {
      // not kept across reloads then; the run still gets it
    }
    summarizeStdin();
  }

  function summarizeStdin() {
    const lines = ui.stdin.value ? ui.stdin.value.replace(/\n$/, "").split("\n").length : 0;
    ui.stdinSummary.textContent = lines ? `(${lines} line${lines === 1 ? "" : "s"})` : "(empty)";
  }

  function hintInput(text) {
    ui.inputHint.textContent = text || "";
    ui.inputHint.hidden = !text;
    if (text) ui.stdinBox.open = true;
  }

  // ---- running -----------------------------------------------------------------------------

  function setStatus(status) {
    ui.status.dataset.status = status || "";
    ui.status.textContent = status ? status.toLowerCase() : "idle";
  }

  function setVerdict(verdict) {
    ui.verdict.dataset.tone = verdict ? verdict.tone : "";
    ui.verdict.textContent = verdict ? verdict.text : "";
  }

  function clearOutput() {
    state.output.reset();
    ui.output.dataset.finished = "false";
    ui.status.dataset.error = "";
    ui.truncated.hidden = true;
    ui.dropped.hidden = true;
    ui.error.hidden = true;
    ui.time.textContent = "";
    setVerdict(null);
    hintInput("");
    setProblems("run", []);
  }

  // the clock of a run: "waiting for a free runner" while QUEUED, then its running time
  function startTicking() {
    stopTicking();
    const run = state.run;
    state.tick = setInterval(() => {
      if (!run || state.run !== run) return;
      const now = Date.now();
      if (run.status === "RUNNING") {
        ui.time.textContent = `${((now - run.runningSince) / 1000).toFixed(1)} s`;
        setVerdict({
          tone: "warn",
          text: run.wantsInput && run.interactive
            ? "Waiting for your input: type in the output and press Enter (Ctrl+D ends the input)"
            : "Running…",
        });
      } else {
        ui.time.textContent = `${((now - run.queuedSince) / 1000).toFixed(1)} s`;
        setVerdict({ tone: "warn", text: "Waiting for a free runner…" });
      }
    }, TICK_MS);
  }

  function stopTicking() {
    clearInterval(state.tick);
    state.tick = null;
  }

  // the result as the engine stored it; live chunks stay if they add up to it (they keep the interleaving)
  function showResult(execution, chunks) {
    stopTicking();
    setStatus(execution.status);
    // a run the learner stopped did nothing wrong: said in words, not as a failure
    ui.status.dataset.error = execution.error || "";
    if (execution.error === "cancelled") ui.status.textContent = "stopped";
    ui.output.dataset.finished = "true";
    const live = chunks && chunks.stdout === execution.stdout && chunks.stderr === execution.stderr;
    if (!live) {
      state.output.reset();
      if (execution.stdout) state.output.write("stdout", execution.stdout);
      if (execution.stderr) state.output.write("stderr", execution.stderr);
    }
    state.output.end();
    const verdict = Problems.describe(execution);
    setVerdict(verdict);
    const parts = [];
    const compileError = execution.error === "compile_error";
    if (execution.compile_time_ms != null && !compileError) parts.push(`compiled in ${seconds(execution.compile_time_ms)}`);
    // a finished run's verdict has its time already
    const timed = execution.status === "COMPLETED" || execution.error === "cancelled";
    if (!compileError && !timed && execution.execution_time_ms != null) parts.push(`ran ${seconds(execution.execution_time_ms)}`);
    // the exit code says something only when the program chose it; a limit or signal is in the verdict
    if (execution.error === "nonzero_exit") parts.push(`exit code ${execution.exit_code}`);
    ui.time.textContent = parts.join(" · ");
    ui.truncated.hidden = !(execution.stdout_truncated || execution.stderr_truncated);
    ui.error.hidden = true;
    const problems = Problems.parse(execution.language, execution.stderr, sourceFile(execution.language));
    setProblems("run", problems);
    if (/should be declared in a file named/.test(execution.stderr || "")) {
      hintInput("Java runs the public class Main: name your class Main (public class Main { ... }).");
      ui.stdinBox.open = Boolean(ui.stdin.value);
    } else if (Problems.wantedInput(execution)) {
      hintInput(ui.stdin.value
        ? "The program asked for more input than the Input box holds: add the values it reads, one per line, and run again."
        : "The program asked for input (it read past the end of an empty input). Type what it reads in the Input box above, one value per line, and run again.");
      ui.stdin.focus();
    } else if (execution.status !== "COMPLETED" || !execution.stdout) {
      if (!ui.stdin.value && Problems.readsInput(execution.language, state.editor.getCode()) && execution.error !== "compile_error" && !(state.run && state.run.interactive)) {
        hintInput("This program reads input, and the Input box is empty: it got nothing. Type what it reads in the Input box above.");
      }
    }
  }

  function seconds(ms) {
    return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
  }

  function watchDropped() {
    const dropped = Number(ui.output.dataset.dropped || 0);
    ui.dropped.hidden = !dropped;
    ui.dropped.textContent = dropped ? `The page kept the start and the end of a long output; ${dropped.toLocaleString()} characters in the middle are not shown.` : "";
  }

  function follow(executionId, queuedSince) {
    const run = {
      executionId, chunks: { stdout: "", stderr: "" }, source: null, status: "QUEUED",
      queuedSince: queuedSince || Date.now(), runningSince: null, interactive: false, wantsInput: false,
      // the console: stdin posts are numbered (a retried one is not appended twice), and what
      // was typed here is not shown again when its stdin event comes back
      stdinSeq: 0, echoed: [],
    };
    state.run = run;
    showRunning(true);
    startTicking();
    const source = new EventSource(`/executions/${executionId}/events`);
    run.source = source;
    source.addEventListener("status", (event) => {
      const { status } = JSON.parse(event.data);
      setStatus(status);
      if (status === "RUNNING" && run.status !== "RUNNING") {
        run.status = "RUNNING";
        run.runningSince = Date.now();
        if (run.interactive) state.output.enableInput(true);
      }
    });
    for (const stream of ["stdout", "stderr"]) {
      source.addEventListener(stream, (event) => {
        const { text } = JSON.parse(event.data);
        run.chunks[stream] += text;
        run.wantsInput = false;
        state.output.write(stream, text);
        emit("output", { stream, text });
      });
    }
    source.addEventListener("stdin_wanted", () => {
      run.wantsInput = true;
      if (run.interactive) state.output.enableInput(true);
    });
    // input as it reached the program: what this page typed is on screen already
    source.addEventListener("stdin", (event) => {
      const { text } = JSON.parse(event.data);
      if (run.echoed.length && run.echoed[0] === text) {
        run.echoed.shift();
        return;
      }
      state.output.write("stdin", text);
    });
    source.addEventListener("final", (event) => {
      // the stream ends here; without close() EventSource would reconnect
      source.close();
      finishRun(run, JSON.parse(event.data));
    });
    source.addEventListener("gone", () => {
      source.close();
      finishRun(run, null);
    });
    // a dropped connection reconnects by itself with Last-Event-ID; one the server refused
    // (too many streams, say) is closed for good: long-poll for the result instead
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) pollResult(run);
    });
    return run;
  }

  async function pollResult(run) {
    while (state.run === run) {
      try {
        const execution = await api("GET", `/executions/${run.executionId}?wait=25`);
        setStatus(execution.status);
        run.status = execution.status;
        if (!["QUEUED", "RUNNING"].includes(execution.status)) {
          finishRun(run, execution);
          return;
        }
      } catch (error) {
        await new Promise((resolve) => setTimeout(resolve, SAVE_RETRY_MS));
      }
    }
  }

  function finishRun(run, execution) {
    if (state.run !== run) return;
    state.output.enableInput(false);
    if (execution) showResult(execution, run.chunks);
    else stopTicking();
    state.run = null;
    showRunning(false);
    loadHistory();
    if (execution) emit("run-finished", execution);
  }

  function showRunning(running) {
    ui.stop.hidden = !running;
    ui.stop.disabled = false;
    if (!state.retryTimer) ui.run.disabled = running;
  }

  async function stopRun() {
    const run = state.run;
    if (!run) return;
    ui.stop.disabled = true;
    try {
      await api("POST", `/executions/${run.executionId}/cancel`, {});
    } catch (error) {
      ui.stop.disabled = false;
      if (error.status === 404 || error.status === 405) notice("This engine cannot stop a run; it ends at its time limit.");
      else if (error.status !== 409) notice(`Could not stop the run: ${error.message}`);
    }
  }

  // the console: what the learner types into the output pane goes to the running program, one
  // POST at a time (the engine takes chunks in seq order: two in flight could arrive swapped)
  function sendInput(input) {
    const run = state.run;
    if (!run || !run.interactive) return;
    run.wantsInput = false;
    run.stdinSeq += 1;
    if (input.data) run.echoed.push(input.data);
    const body = { data: input.data, eof: Boolean(input.eof), seq: run.stdinSeq };
    run.sending = (run.sending || Promise.resolve()).then(() => postInput(run, body));
  }

  async function postInput(run, body) {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await api("POST", `/executions/${run.executionId}/stdin`, body);
        return;
      } catch (error) {
        // 409: the run has ended (or the input is closed): nothing more to send
        if (error.status && error.status < 500) {
          if (error.status !== 409) notice(`Could not send the input: ${error.message}`);
          return;
        }
        // a lost answer: the same seq again is not appended twice
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
    notice("Could not send the input: the engine did not answer.");
  }

  async function runCode() {
    if (ui.run.disabled || !state.session) return;
    ui.run.disabled = true;
    closePastRun();
    if (state.run && state.run.source) state.run.source.close();
    state.run = null;
    try {
      // the run takes the stored code: store the editor's first
      await save();
      if (state.conflict) throw new Error("Resolve the conflict before running.");
      const stdin = ui.stdin.value;
      // a program that reads input with nothing in the Input box gets a console: the learner types into the output
      const interactive = !stdin && state.interactive !== false && Problems.readsInput(state.session.language, state.editor.getCode());
      const body = stdin ? { stdin } : {};
      if (interactive) body.interactive = true;
      const queuedSince = Date.now();
      let execution;
      try {
        execution = await api("POST", `/code-sessions/${state.session.session_id}/run`, body);
      } catch (error) {
        // an engine without interactive runs refuses the field: run plainly, and remember
        if (!interactive || error.status !== 422) throw error;
        state.interactive = false;
        delete body.interactive;
        execution = await api("POST", `/code-sessions/${state.session.session_id}/run`, body);
      }
      if (interactive && body.interactive) state.interactive = true;
      // only now: a refused run leaves the last output on screen
      clearOutput();
      setStatus(execution.status || "QUEUED");
      const run = follow(execution.execution_id, queuedSince);
      run.interactive = Boolean(body.interactive);
      emit("run-started", execution);
      loadHistory();
    } catch (error) {
      ui.run.disabled = false;
      showRunning(false);
      if (error.status === 429 || (error.status === 503 && error.retryAfter)) {
        countDown(error);
      } else {
        ui.error.hidden = false;
        ui.error.textContent = `Could not run: ${error.message}`;
      }
    }
  }

  // a refusal with Retry-After: the output stays, the Run button counts down
  function countDown(error) {
    const until = Date.now() + (error.retryAfter || 5) * 1000;
    const why = error.status === 429 ? "Too many runs in a short time" : "The engine is busy";
    clearInterval(state.retryTimer);
    const show = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(state.retryTimer);
        state.retryTimer = null;
        ui.error.hidden = true;
        ui.run.disabled = Boolean(state.run);
        return;
      }
      ui.error.hidden = false;
      ui.error.dataset.kind = "retry";
      ui.error.textContent = `${why}: you can run again in ${left} s. Your last output is still below.`;
      ui.run.disabled = true;
    };
    state.retryTimer = setInterval(show, 250);
    show();
  }

  // ---- history -----------------------------------------------------------------------------

  function firstLine(execution) {
    // a compiler's "In function ..." preamble says less than its first error
    const error = (execution.stderr || "").split("\n").find((line) => /\berror\b/.test(line));
    if (!execution.stdout && error && execution.error === "compile_error") return error.replace(/\/box\//g, "").trim();
    for (const text of [execution.stdout, execution.stderr]) {
      const line = (text || "").split("\n").map((part) => part.trim()).find(Boolean);
      if (line) return line.replace(/\/box\//g, "");
    }
    return "(no output)";
  }

  async function loadHistory() {
    if (!state.session) return;
    let page;
    try {
      page = await api("GET", `/code-sessions/${state.session.session_id}/executions?limit=${HISTORY_LIMIT}`);
    } catch (error) {
      return;
    }
    ui.history.textContent = "";
    for (const execution of page) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.status = execution.status;
      badge.textContent = SHORT[execution.language] || execution.language;
      const result = document.createElement("span");
      result.className = "result";
      result.textContent = Problems.describe(execution).text;
      const line = document.createElement("span");
      line.className = "first-line";
      line.textContent = firstLine(execution);
      const time = document.createElement("span");
      time.className = "when";
      time.textContent = new Date(execution.queued_at).toLocaleTimeString();
      button.append(badge, result, line, time);
      button.setAttribute("aria-label", `${SHORT[execution.language] || execution.language} run at ${time.textContent}: ${result.textContent}; ${line.textContent}`);
      button.addEventListener("click", () => showPastRun(execution.execution_id).catch((error) => notice(error.message)));
      item.appendChild(button);
      ui.history.appendChild(item);
    }
  }

  async function showPastRun(executionId) {
    if (state.run) return;
    const execution = await api("GET", `/executions/${executionId}?include=source`);
    clearOutput();
    if (execution.status === "QUEUED" || execution.status === "RUNNING") {
      follow(executionId);
      return;
    }
    showResult(execution, null);
    // its own code, not the editor's: the markers and links are for that code
    setProblems("run", []);
    state.pastRunCode = execution.source_code;
    ui.pastRunTitle.textContent = `${SHORT[execution.language] || execution.language} run of ${new Date(execution.queued_at).toLocaleString()}`
      + (execution.source_code === state.editor.getCode() ? " (same code as the editor)" : " (its code differs from the editor's)");
    ui.pastRunCode.textContent = execution.source_code;
    ui.pastRunStdin.textContent = execution.stdin || "";
    ui.pastRunStdinBox.hidden = !execution.stdin;
    ui.pastRun.hidden = false;
    ui.pastRun.dataset.executionId = executionId;
  }

  function closePastRun() {
    ui.pastRun.hidden = true;
    state.pastRunCode = null;
  }

  // ---- start -------------------------------------------------------------------------------

  const darkScheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  async function start() {
    const dark = Boolean(darkScheme && darkScheme.matches);
    state.editor = CodeEditor.create({
      parent: $("editor"),
      doc: "",
      language: "python",
      dark,
      onChange: edited,
      onRun: runCode,
    });
    state.output = new OutputPane(ui.output, {
      onLink: (line, column) => {
        if (!ui.pastRun.hidden) closePastRun();
        state.editor.goTo(line, column);
      },
      onInput: sendInput,
      onInterrupt: () => {
        if (state.run) stopRun();
      },
    });
    new MutationObserver(watchDropped).observe(ui.output, { attributes: true, attributeFilter: ["data-dropped"] });
    if (darkScheme) {
      darkScheme.addEventListener("change", (event) => state.editor.setDark(event.matches));
    }
    try {
      const { languages } = await api("GET", "/languages");
      for (const language of languages) {
        state.languages[language.name] = language;
      }
      for (const language of languages) {
        const option = document.createElement("option");
        option.value = language.name;
        option.textContent = displayName(language.name);
        TEMPLATES[language.name] = language.template || "";
        ui.language.appendChild(option);
      }
      const session = await openSession();
      adopt(session);
      showSave("saved");
      ui.language.disabled = false;
      ui.run.disabled = false;
      state.editor.focus();
      loadHistory();
    } catch (error) {
      showSave("error");
      notice(`The engine could not be reached: ${error.message}`);
    }
  }

  // the Tests panel's hook (tests-panel.js): which session, and store the editor's code first
  window.LiveCodeEditor = { sessionId: () => state.session && state.session.session_id, save: () => save() };

  ui.run.addEventListener("click", runCode);
  ui.stop.addEventListener("click", stopRun);
  ui.language.addEventListener("change", changeLanguage);
  ui.switchKeep.addEventListener("click", () => applyLanguage(ui.switchBanner.dataset.language));
  ui.switchTemplate.addEventListener("click", () => {
    const language = ui.switchBanner.dataset.language;
    applyLanguage(language, TEMPLATES[language] || "");
  });
  ui.switchCancel.addEventListener("click", () => {
    ui.switchBanner.hidden = true;
  });
  ui.conflictReload.addEventListener("click", () => reloadTheirs().catch((error) => notice(error.message)));
  ui.conflictOverwrite.addEventListener("click", keepMine);
  ui.newSession.addEventListener("click", () => {
    const language = state.session ? state.session.language : ui.language.value;
    window.location.href = `${window.location.pathname}?language=${encodeURIComponent(language)}`;
  });
  ui.pastRunClose.addEventListener("click", closePastRun);
  ui.pastRunRestore.addEventListener("click", () => {
    if (state.pastRunCode === null) return;
    state.editor.setCode(state.pastRunCode);
    closePastRun();
    edited();
  });
  ui.stdin.addEventListener("input", storeStdin);
  ui.stdin.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      runCode();
    }
  });
  // unsaved edits on leaving: try to store them, and let the browser warn
  window.addEventListener("beforeunload", (event) => {
    if (state.dirty && !state.conflict) {
      save().catch(() => {});
      event.preventDefault();
    }
  });

  window.LiveEditor = {
    on(name, handler) {
      (listeners[name] = listeners[name] || []).push(handler);
    },
    setProblems,
    api,
    session: () => state.session && { ...state.session },
    get editor() {
      return state.editor;
    },
    get output() {
      return state.output;
    },
    get running() {
      return Boolean(state.run);
    },
  };

  // what aids.js may use: the editor, the session, saving, and taking a session the server answered
  window.engineEditor = {
    get editor() { return state.editor; },
    get session() { return state.session; },
    get conflict() { return state.conflict; },
    save: () => save(),
    adopt(session) {
      state.dirty = false;
      adopt(session);
      showSave("saved", `v${session.version}`);
    },
  };

  start();
})();
