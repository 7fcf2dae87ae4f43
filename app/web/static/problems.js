// What a finished run means to a learner: its result in plain words, and the lines of their code
// its errors point at (Python tracebacks, g++ and javac messages, Java and Node stacks), as one
// problem shape the editor marks: {line, column, endColumn, severity, message}.
(function () {
  "use strict";

  const SIGNALS = {
    4: ["SIGILL", "illegal instruction"],
    6: ["SIGABRT", "aborted (abort() or a failed assertion)"],
    7: ["SIGBUS", "bus error (a bad memory access)"],
    8: ["SIGFPE", "arithmetic error (division by zero?)"],
    9: ["SIGKILL", "killed"],
    11: ["SIGSEGV", "segmentation fault (a bad pointer or an index out of bounds?)"],
    13: ["SIGPIPE", "broken pipe"],
    15: ["SIGTERM", "terminated"],
  };

  const MIB = 1024 * 1024;

  function seconds(ms) {
    return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
  }

  function limitOf(execution, name) {
    return execution.limits ? execution.limits[name] : undefined;
  }

  // the last "SomeError: message" line of a traceback or stack, or null
  function exceptionLine(stderr) {
    const lines = (stderr || "").split("\n").map((line) => line.trim()).filter(Boolean);
    for (let i = lines.length - 1; i >= 0; i--) {
      const match = lines[i].match(/^(?:Exception in thread "\w+" )?([\w.$]*(?:Error|Exception|Interrupt)\b)(?::\s*(.*))?$/);
      if (match) return { name: match[1].split(".").pop(), message: match[2] || "" };
    }
    return null;
  }

  // {tone: "ok"|"bad"|"warn", text}: the result as a learner reads it
  function describe(execution) {
    const time = execution.execution_time_ms != null ? seconds(execution.execution_time_ms) : "";
    const error = execution.error;
    const exit = execution.exit_code;
    switch (execution.status) {
      case "QUEUED":
        return { tone: "warn", text: "Waiting for a free runner…" };
      case "RUNNING":
        return { tone: "warn", text: "Running…" };
      case "COMPLETED":
        return { tone: "ok", text: `Finished in ${time}` };
      case "TIMEOUT":
        if (error === "input_idle_limit") {
          return { tone: "bad", text: "Stopped: it waited too long for input (type in the output and press Enter)" };
        }
        if (error === "interactive_time_limit") {
          return { tone: "bad", text: "Stopped: the console's time limit was reached" };
        }
        if (error === "cpu_time_limit") {
          return { tone: "bad", text: `Used all its CPU time (${limitOf(execution, "cpu_seconds") || "?"} s): an endless loop?` };
        }
        return { tone: "bad", text: `Timed out after ${limitOf(execution, "timeout_seconds") || Math.round(execution.execution_time_ms / 1000)} s: an endless loop, or waiting for input?` };
      default:
        break;
    }
    const memory = limitOf(execution, "memory_bytes");
    switch (error) {
      case "compile_error":
        // compiles take a good part of a second: said in seconds ("Compile error in 0.8 s")
        return { tone: "bad", text: `Compile error in ${((execution.compile_time_ms || 0) / 1000).toFixed(1)} s` };
      case "memory_limit":
        return { tone: "bad", text: `Ran out of memory${memory ? ` (${Math.round(memory / MIB)} MiB)` : ""}` };
      case "output_limit":
        return { tone: "bad", text: `Printed too much: stopped at ${Math.round((limitOf(execution, "output_bytes") || 0) / 1024)} KiB of output` };
      case "process_limit":
        return { tone: "bad", text: "Started too many processes" };
      case "file_size_limit":
        return { tone: "bad", text: "Wrote a file that is too large" };
      case "disk_limit":
        return { tone: "bad", text: "Filled its disk space" };
      case "cancelled":
        return { tone: "warn", text: `Stopped by you after ${time}` };
      case "interrupted":
        return { tone: "warn", text: "Interrupted: the engine restarted during the run; run it again" };
      case "sandbox_error":
      case "internal_error":
        return { tone: "warn", text: "The engine could not run it (not your code's fault); try again" };
      case "signal": {
        const [name, words] = SIGNALS[exit - 128] || [`signal ${exit - 128}`, "killed by a signal"];
        return { tone: "bad", text: `Crashed: ${words} (${name})` };
      }
      case "nonzero_exit": {
        const thrown = exceptionLine(execution.stderr);
        if (thrown) return { tone: "bad", text: `Stopped by ${thrown.name}${thrown.message ? `: ${thrown.message}` : ""}` };
        return { tone: "bad", text: `Ended with exit code ${exit} (not 0: something went wrong)` };
      }
      default:
        return { tone: "bad", text: error ? error.replace(/_/g, " ") : `Failed (exit code ${exit})` };
    }
  }

  // the learner's file as the engine names it (/box/main.py, main.cpp, Main.java)
  function isSource(path, sourceFile) {
    const base = path.replace(/^\/box\//, "");
    return sourceFile ? base === sourceFile : !base.includes("/");
  }

  // [{line, column, endColumn, severity, message}] from a run's stderr
  function parse(language, stderr, sourceFile) {
    const text = stderr || "";
    if (language === "python") return parsePython(text, sourceFile);
    if (language === "java") return parseJava(text, sourceFile);
    if (language === "javascript" || language === "node") return parseNode(text, sourceFile);
    // tsc and mcs say file(line,col): error CODE: message; a TypeScript program that compiled fails as Node's
    if (language === "typescript") return parseParenthesised(text, sourceFile).concat(parseNode(text, sourceFile));
    if (language === "csharp") return parseParenthesised(text, sourceFile);
    if (language === "go") return parseLines(text, sourceFile, /^(?:\.\/)?(\S+\.go):(\d+):(\d+): (.*)$/);
    if (language === "rust") return parseRust(text, sourceFile);
    if (language === "ruby") return parseLines(text, sourceFile, /^(?:\/box\/)?(\S+\.rb):(\d+):in [^:]*: (.*)$/, false, "run");
    return parseGcc(text, sourceFile);
  }

  // file(line,col): error|warning CODE: message (tsc, mcs)
  function parseParenthesised(text, sourceFile) {
    const problems = [];
    for (const line of text.split("\n")) {
      const match = line.match(/^(?:\.\/)?(\S+?)\((\d+),(\d+)\): (error|warning) (\w+): (.*)$/);
      if (match && isSource(match[1], sourceFile)) {
        problems.push({ line: Number(match[2]), column: Number(match[3]), severity: match[4], message: `${match[6]} [${match[5]}]`, source: "compiler" });
      }
    }
    return problems;
  }

  // one error a line: file:line:col: message (go's compiler), or file:line:in ...: message (a
  // ruby exception, no column)
  function parseLines(text, sourceFile, pattern, hasColumn = true, source = "compiler") {
    const problems = [];
    for (const line of text.split("\n")) {
      const match = line.match(pattern);
      if (match && isSource(match[1], sourceFile)) {
        const column = hasColumn ? Number(match[3]) : null;
        problems.push({ line: Number(match[2]), column, severity: "error", message: match[hasColumn ? 4 : 3], source });
      }
    }
    return problems;
  }

  // rustc: "error[E0425]: message" and, a line or two below, "  --> main.rs:2:14"
  function parseRust(text, sourceFile) {
    const problems = [];
    let pending = null;
    for (const line of text.split("\n")) {
      const head = line.match(/^(error|warning)(?:\[E\d+\])?: (.*)$/);
      if (head) {
        pending = { severity: head[1], message: head[2] };
        continue;
      }
      const where = line.match(/^\s*--> (\S+):(\d+):(\d+)/);
      if (where && pending && isSource(where[1], sourceFile)) {
        problems.push({ line: Number(where[2]), column: Number(where[3]), severity: pending.severity, message: pending.message, source: "compiler" });
        pending = null;
      }
    }
    return problems;
  }

  function parsePython(text, sourceFile) {
    const frames = [];
    let caretColumn = null;
    const lines = text.split("\n");
    lines.forEach((line, index) => {
      const match = line.match(/^\s*File "([^"]+)", line (\d+)/);
      if (match && isSource(match[1], sourceFile)) {
        frames.push({ line: Number(match[2]), index });
      }
    });
    if (!frames.length) return [];
    const thrown = exceptionLine(text);
    const message = thrown ? `${thrown.name}${thrown.message ? `: ${thrown.message}` : ""}` : "error";
    // a SyntaxError's caret: under the code line, which is printed with its indentation shifted
    const last = frames[frames.length - 1];
    const code = lines[last.index + 1];
    const caret = lines[last.index + 2];
    if (thrown && /Error$/.test(thrown.name) && code !== undefined && caret !== undefined && /^\s*\^+\s*$/.test(caret) && /SyntaxError|IndentationError/.test(thrown.name)) {
      caretColumn = caret.indexOf("^") - (code.length - code.trimStart().length) + 1;
    }
    return frames.map((frame, i) => {
      const deepest = i === frames.length - 1;
      return {
        line: frame.line,
        column: deepest ? caretColumn : null,
        severity: deepest ? "error" : "info",
        message: deepest ? message : `${message} (raised in a call made from here)`,
        source: "run",
      };
    });
  }

  function parseGcc(text, sourceFile) {
    const problems = [];
    for (const line of text.split("\n")) {
      const match = line.match(/^(\S+?):(\d+):(\d+): (fatal error|error|warning): (.*)$/);
      if (match && isSource(match[1], sourceFile)) {
        problems.push({ line: Number(match[2]), column: Number(match[3]), severity: match[4] === "warning" ? "warning" : "error", message: match[5], source: "compiler" });
      }
    }
    return problems;
  }

  function parseJava(text, sourceFile) {
    const problems = [];
    const lines = text.split("\n");
    lines.forEach((line, index) => {
      const compile = line.match(/^(\S+\.java):(\d+): (error|warning): (.*)$/);
      if (compile && isSource(compile[1], sourceFile)) {
        const caret = lines[index + 2] || "";
        const column = /^\s*\^\s*$/.test(caret) ? caret.indexOf("^") + 1 : null;
        problems.push({ line: Number(compile[2]), column, severity: compile[3], message: compile[4], source: "compiler" });
      }
    });
    if (problems.length) return problems;
    const thrown = exceptionLine(text);
    const message = thrown ? `${thrown.name}${thrown.message ? `: ${thrown.message}` : ""}` : "exception";
    lines.forEach((line) => {
      const frame = line.match(/^\s+at .*\((\w+\.java):(\d+)\)/);
      if (frame && isSource(frame[1], sourceFile)) {
        problems.push({ line: Number(frame[2]), column: null, severity: problems.length ? "info" : "error", message: problems.length ? `${message} (raised in a call made from here)` : message, source: "run" });
      }
    });
    return problems;
  }

  function parseNode(text, sourceFile) {
    const problems = [];
    const thrown = exceptionLine(text);
    const message = thrown ? `${thrown.name}${thrown.message ? `: ${thrown.message}` : ""}` : "error";
    for (const line of text.split("\n")) {
      const frame = line.match(/^\s+at (?:.*?\()?(\/box\/[^):]+|[\w.-]+\.m?[jt]s):(\d+):(\d+)\)?\s*$/);
      if (frame && isSource(frame[1], sourceFile)) {
        const first = !problems.length;
        problems.push({ line: Number(frame[2]), column: Number(frame[3]), severity: first ? "error" : "info", message: first ? message : `${message} (raised in a call made from here)`, source: "run" });
      }
    }
    if (!problems.length) {
      // a SyntaxError has no stack: its first line is "/box/main.js:3"
      const header = text.match(/^(\S+\.m?[jt]s):(\d+)\s*$/m);
      if (header && isSource(header[1], sourceFile)) problems.push({ line: Number(header[2]), column: null, severity: "error", message, source: "run" });
    }
    return problems;
  }

  // did the run stop because it wanted input it was not given?
  function wantedInput(execution) {
    const stderr = execution.stderr || "";
    return /EOFError: EOF when reading a line|java\.util\.NoSuchElementException|No line found/.test(stderr);
  }

  // does the code look like it reads stdin (for languages that read nothing quietly, such as C++'s cin)?
  function readsInput(language, code) {
    const patterns = {
      python: /\binput\s*\(|sys\.stdin/,
      cpp: /\b(?:std::)?cin\b|\bscanf\s*\(|\bgetline\s*\(|\bgetchar\s*\(/,
      c: /\bscanf\s*\(|\bgetchar\s*\(|\bfgets\s*\(/,
      java: /\bScanner\s*\(\s*System\.in|System\.in\b/,
      javascript: /process\.stdin|readline|fs\.readFileSync\(\s*(?:0|["']\/dev\/stdin["'])/,
      typescript: /process\.stdin|readline|fs\.readFileSync\(\s*(?:0|["']\/dev\/stdin["'])/,
      go: /fmt\.Scan|bufio\.NewReader\(\s*os\.Stdin|bufio\.NewScanner\(\s*os\.Stdin|os\.Stdin/,
      rust: /io::stdin|stdin\(\)/,
      ruby: /\bgets\b|\$stdin|STDIN/,
      php: /STDIN|php:\/\/stdin|\breadline\s*\(|fscanf\s*\(/,
      csharp: /Console\.(?:ReadLine|Read|In)\b/,
      bash: /\bread\b/,
    };
    return Boolean(patterns[language] && patterns[language].test(code || ""));
  }

  window.Problems = { describe, parse, wantedInput, readsInput, exceptionLine };
})();
