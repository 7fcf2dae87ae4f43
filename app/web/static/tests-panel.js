// The Tests panel: grades the session's code against the task's test suite (?suite=<id> in the
// URL) and shows each verdict as it arrives, with the difference for visible cases. It uses only
// the public API, and the editor's hook window.LiveCodeEditor ({sessionId(), save()}).
(function () {
  "use strict";

  const suiteId = new URL(window.location.href).searchParams.get("suite");
  const panel = document.getElementById("tests-panel");
  if (!suiteId || !panel) return;

  const LABELS = {
    PASSED: "Passed", WRONG_ANSWER: "Wrong answer", RUNTIME_ERROR: "Runtime error", TIME_LIMIT: "Time limit",
    MEMORY_LIMIT: "Memory limit", OUTPUT_LIMIT: "Output limit", SKIPPED: "Skipped",
  };
  const style = document.createElement("style");
  style.textContent = `
    .tests-head { display: flex; gap: .5rem; align-items: center; }
    .tests-list { list-style: none; padding: 0; margin: .25rem 0; }
    .tests-list li { border-bottom: 1px solid #8883; padding: .2rem 0; }
    .tests .test-verdict { font-weight: 600; min-width: 7.5rem; display: inline-block; }
    .tests .test-verdict[data-verdict="PASSED"] { color: var(--ok, #1a7f37); }
    .tests .test-verdict[data-verdict="SKIPPED"] { color: var(--muted, #777); }
    .tests .test-verdict:not([data-verdict="PASSED"]):not([data-verdict="SKIPPED"]) { color: var(--bad, #c62828); }
    .tests-list pre { margin: .2rem 0; white-space: pre-wrap; max-height: 10rem; overflow: auto; }
  `;
  document.head.appendChild(style);
  panel.hidden = false;
  panel.innerHTML = `
    <div class="tests-head">
      <h2>Tests</h2>
      <button type="button" id="tests-run">Run tests</button>
      <span id="tests-summary" class="meta" role="status" aria-live="polite"></span>
    </div>
    <ol id="tests-list" class="tests-list"></ol>`;
  const button = document.getElementById("tests-run");
  const summary = document.getElementById("tests-summary");
  const list = document.getElementById("tests-list");
  let stream = null;

  function text(tag, value, className) {
    const node = document.createElement(tag);
    node.textContent = value;
    if (className) node.className = className;
    return node;
  }

  function row(test) {
    const item = document.createElement("li");
    item.dataset.index = test.index;
    const verdict = text("span", LABELS[test.verdict] || test.verdict, "test-verdict");
    verdict.dataset.verdict = test.verdict;
    item.append(verdict, text("span", `${test.name}${test.hidden ? " (hidden)" : ""}`));
    if (test.time_ms != null) item.append(text("span", ` · ${test.time_ms} ms`, "meta"));
    if (test.verdict !== "PASSED" && test.message) item.append(text("div", test.message, "meta"));
    if (!test.hidden && test.verdict !== "PASSED" && test.verdict !== "SKIPPED") {
      const details = document.createElement("details");
      details.append(text("summary", "Input, expected and actual output"));
      details.append(text("div", "Input"), text("pre", test.stdin || ""));
      details.append(text("div", "Expected"), text("pre", test.expected_output || ""));
      details.append(text("div", "Actual"), text("pre", test.actual_output || ""));
      item.append(details);
    }
    return item;
  }

  function show(test) {
    const old = list.querySelector(`li[data-index="${test.index}"]`);
    const fresh = row(test);
    if (old) old.replaceWith(fresh);
    else list.append(fresh);
  }

  function describe(grade) {
    const visible = grade.tests.filter((t) => !t.hidden);
    const hidden = grade.tests.filter((t) => t.hidden);
    const passed = (tests) => tests.filter((t) => t.verdict === "PASSED").length;
    const parts = [`${grade.passed} of ${grade.total} passed`, `score ${grade.score} / ${grade.max_score}`];
    if (visible.length && hidden.length) parts.push(`${passed(visible)} of ${visible.length} visible`);
    if (hidden.length) parts.push(`${passed(hidden)} of ${hidden.length} hidden tests passed`);
    if (!grade.complete) parts.push("incomplete");
    return parts.join(" · ");
  }

  function finish(execution) {
    if (stream) stream.close();
    stream = null;
    button.disabled = false;
    if (execution.grade) {
      execution.grade.tests.forEach(show);
      summary.textContent = describe(execution.grade);
    }
    if (execution.error === "compile_error") summary.textContent = "The program did not compile: every test skipped.";
    else if (execution.status === "FAILED") summary.textContent = `Grading failed: ${execution.error}`;
  }

  async function runTests() {
    const editor = window.LiveCodeEditor;
    if (!editor || !editor.sessionId()) return;
    button.disabled = true;
    list.textContent = "";
    summary.textContent = "Running…";
    try {
      await editor.save();
      const response = await fetch(`/code-sessions/${editor.sessionId()}/grade`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ test_suite_id: suiteId }),
      });
      const execution = await response.json();
      if (!response.ok) throw new Error(execution.message || `HTTP ${response.status}`);
      stream = new EventSource(`/executions/${execution.execution_id}/events`);
      stream.addEventListener("test_result", (event) => show(JSON.parse(event.data)));
      stream.addEventListener("final", (event) => finish(JSON.parse(event.data)));
      stream.addEventListener("error", () => {
        // the stream broke: the long-poll has the result
        if (stream) stream.close();
        stream = null;
        fetch(`/executions/${execution.execution_id}?wait=30`).then((r) => r.json()).then(finish).catch(() => {});
      });
    } catch (error) {
      button.disabled = false;
      summary.textContent = `Could not run the tests: ${error.message}`;
    }
  }

  button.addEventListener("click", runTests);
})();
