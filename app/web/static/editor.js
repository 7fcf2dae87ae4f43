// The browser editor: a code session with autosave, runs with live output, and the run history.
// It uses only the public API (see /docs); the editor component is the vendored CodeMirror bundle.
(function () {
  "use strict";

  const SAVE_DEBOUNCE_MS = 600;
  const SAVE_RETRY_MS = 3000;
  const HISTORY_LIMIT = 10;
  const TEMPLATES = {
    python: 'print("Hello, world!")\n',
    javascript: 'console.log("Hello, world!");\n',
    cpp: '#include <iostream>\n\nint main() {\n    std::cout << "Hello, world!" << std::endl;\n    return 0;\n}\n',
    java: 'public class Main {\n    public static void main(String[] args) {\n        System.out.println("Hello, world!");\n    }\n}\n',
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    language: $("language"), save: $("save-state"), run: $("run"), newSession: $("new-session"),
    conflict: $("conflict"), conflictReload: $("conflict-reload"), conflictOverwrite: $("conflict-overwrite"),
    notice: $("notice"), stdin: $("stdin"), status: $("status"), time: $("time"), exitCode: $("exit-code"),
    output: $("output"), truncated: $("truncated"), error: $("error"), history: $("history"), sessionId: $("session-id"),
  };

  const state = {
    session: null, // {session_id, language, version}
    editor: null,
    dirty: false, // edits not yet sent
    saving: null, // the PATCH in flight (a promise)
    conflict: false,
    saveTimer: null,
    pasted: false, // a paste since the last PATCH: that save starts a revision of its own
    run: null, // {executionId, source, chunks: {stdout, stderr}, started}
    tick: null,
  };

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(method, path, body, headers) {
    const response = await fetch(path, {
      method,
      headers: { Accept: "application/json", ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // the learner aids (aids.js) follow the session through these events: session, change, saved
  function emit(name, detail) {
    document.dispatchEvent(new CustomEvent(`engine:${name}`, { detail }));
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
        state.conflict = true;
        ui.conflict.hidden = false;
        showSave("conflict");
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
    showSave("saved", `v${session.version}`);
  }

  async function keepMine() {
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
    const url = new URL(window.location.href);
    if (url.searchParams.get("session") !== session.session_id) {
      url.searchParams.set("session", session.session_id);
      window.history.replaceState(null, "", url);
    }
    emit("session", state.session);
  }

  async function openSession() {
    const wanted = new URL(window.location.href).searchParams.get("session");
    if (wanted) {
      try {
        return await api("GET", `/code-sessions/${encodeURIComponent(wanted)}`);
      } catch (error) {
        if (error.status !== 404) throw error;
        notice(`Session ${wanted} does not exist (deleted?); this is a new one.`);
      }
    }
    const language = ui.language.value || "python";
    return api("POST", "/code-sessions", { language, source_code: TEMPLATES[language] || "" });
  }

  async function changeLanguage() {
    const language = ui.language.value;
    const previous = state.session.language;
    const code = state.editor.getCode();
    const body = { language, version: state.session.version };
    // a buffer still holding the old starter code gets the new language's
    if (!code.trim() || code === TEMPLATES[previous]) {
      body.source_code = TEMPLATES[language] || "";
    }
    try {
      await save();
      body.version = state.session.version;
      const saved = await api("PATCH", `/code-sessions/${state.session.session_id}`, body);
      adopt(saved);
      showSave("saved", `v${saved.version}`);
    } catch (error) {
      ui.language.value = previous;
      if (error.status === 409) {
        state.conflict = true;
        ui.conflict.hidden = false;
        showSave("conflict");
      } else {
        notice(`Could not change the language: ${error.message}`);
      }
    }
  }

  // ---- running -----------------------------------------------------------------------------

  function setStatus(status) {
    ui.status.dataset.status = status || "";
    ui.status.textContent = status ? status.toLowerCase() : "idle";
  }

  function append(stream, text) {
    const atBottom = ui.output.scrollTop + ui.output.clientHeight >= ui.output.scrollHeight - 4;
    const last = ui.output.lastElementChild;
    if (last && last.className === stream) {
      last.textContent += text;
    } else {
      const span = document.createElement("span");
      span.className = stream;
      span.textContent = text;
      ui.output.appendChild(span);
    }
    if (atBottom) ui.output.scrollTop = ui.output.scrollHeight;
  }

  function clearOutput() {
    ui.output.textContent = "";
    ui.truncated.hidden = true;
    ui.error.hidden = true;
    ui.time.textContent = "";
    ui.exitCode.textContent = "";
  }

  function startTicking(since) {
    stopTicking();
    state.tick = setInterval(() => {
      ui.time.textContent = `${((Date.now() - since) / 1000).toFixed(1)} s`;
    }, 100);
  }

  function stopTicking() {
    clearInterval(state.tick);
    state.tick = null;
  }

  // the result as the engine stored it; live chunks stay if they add up to it (they keep the interleaving)
  function showResult(execution, chunks) {
    stopTicking();
    setStatus(execution.status);
    const live = chunks && chunks.stdout === execution.stdout && chunks.stderr === execution.stderr;
    if (!live) {
      ui.output.textContent = "";
      if (execution.stdout) append("stdout", execution.stdout);
      if (execution.stderr) append("stderr", execution.stderr);
    }
    ui.time.textContent = execution.execution_time_ms != null ? `${execution.execution_time_ms} ms` : "";
    ui.exitCode.textContent = execution.exit_code != null ? `exit ${execution.exit_code}` : "";
    ui.truncated.hidden = !(execution.stdout_truncated || execution.stderr_truncated);
    ui.error.hidden = !execution.error;
    ui.error.textContent = execution.error ? `Stopped: ${execution.error.replace(/_/g, " ")}` : "";
  }

  function follow(executionId) {
    const run = { executionId, chunks: { stdout: "", stderr: "" }, source: null };
    state.run = run;
    const source = new EventSource(`/executions/${executionId}/events`);
    run.source = source;
    source.addEventListener("status", (event) => {
      const { status } = JSON.parse(event.data);
      setStatus(status);
      if (status === "RUNNING" && !state.tick) startTicking(Date.now());
    });
    for (const stream of ["stdout", "stderr"]) {
      source.addEventListener(stream, (event) => {
        const { text } = JSON.parse(event.data);
        run.chunks[stream] += text;
        append(stream, text);
      });
    }
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
  }

  async function pollResult(run) {
    while (state.run === run) {
      try {
        const execution = await api("GET", `/executions/${run.executionId}?wait=25`);
        setStatus(execution.status);
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
    state.run = null;
    ui.run.disabled = false;
    if (execution) showResult(execution, run.chunks);
    else stopTicking();
    loadHistory();
  }

  async function runCode() {
    if (ui.run.disabled || !state.session) return;
    ui.run.disabled = true;
    if (state.run && state.run.source) state.run.source.close();
    state.run = null;
    clearOutput();
    setStatus("QUEUED");
    try {
      // the run takes the stored code: store the editor's first
      await save();
      if (state.conflict) throw new Error("Resolve the conflict before running.");
      const stdin = ui.stdin.value;
      const execution = await api("POST", `/code-sessions/${state.session.session_id}/run`, stdin ? { stdin } : {});
      follow(execution.execution_id);
      loadHistory();
    } catch (error) {
      setStatus("");
      ui.run.disabled = false;
      ui.error.hidden = false;
      ui.error.textContent = `Could not run: ${error.message}`;
    }
  }

  // ---- history -----------------------------------------------------------------------------

  function describeRun(execution) {
    const when = new Date(execution.queued_at).toLocaleTimeString();
    const parts = [];
    if (execution.execution_time_ms != null) parts.push(`${execution.execution_time_ms} ms`);
    if (execution.exit_code != null) parts.push(`exit ${execution.exit_code}`);
    return { when, detail: parts.join(" · ") };
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
      badge.textContent = execution.status.toLowerCase();
      const { when, detail } = describeRun(execution);
      const info = document.createElement("span");
      info.textContent = detail;
      const time = document.createElement("span");
      time.className = "when";
      time.textContent = when;
      button.append(badge, info, time);
      button.addEventListener("click", () => showPastRun(execution.execution_id));
      item.appendChild(button);
      ui.history.appendChild(item);
    }
  }

  async function showPastRun(executionId) {
    if (state.run) return;
    const execution = await api("GET", `/executions/${executionId}`);
    clearOutput();
    if (execution.status === "QUEUED" || execution.status === "RUNNING") {
      ui.run.disabled = true;
      follow(executionId);
    } else {
      showResult(execution, null);
    }
  }

  // ---- start -------------------------------------------------------------------------------

  async function start() {
    state.editor = CodeEditor.create({
      parent: $("editor"),
      doc: "",
      language: "python",
      onChange: edited,
      onRun: runCode,
    });
    try {
      const { languages } = await api("GET", "/languages");
      for (const language of languages) {
        const option = document.createElement("option");
        option.value = language.name;
        option.textContent = language.version ? `${language.name} ${language.version}` : language.name;
        ui.language.appendChild(option);
      }
      const session = await openSession();
      adopt(session);
      showSave("saved", `v${session.version}`);
      ui.language.disabled = false;
      ui.run.disabled = false;
      state.editor.focus();
      loadHistory();
    } catch (error) {
      showSave("error");
      notice(`The engine could not be reached: ${error.message}`);
    }
  }

  ui.run.addEventListener("click", runCode);
  ui.language.addEventListener("change", changeLanguage);
  ui.conflictReload.addEventListener("click", () => reloadTheirs().catch((error) => notice(error.message)));
  ui.conflictOverwrite.addEventListener("click", keepMine);
  ui.newSession.addEventListener("click", () => {
    window.location.href = window.location.pathname;
  });
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
