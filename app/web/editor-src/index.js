// The components of the browser editor: CodeMirror 6 with the languages the engine runs, and the
// xterm.js terminal the output is written to.
// Rebuild the vendored bundle after changing this file or package.json:
//   cd app/web/editor-src && npm ci && npm run build
// which writes ../static/vendor/codemirror.js and ../static/vendor/xterm.css (committed; node_modules is not).
import { basicSetup, EditorView } from "codemirror";
import { Compartment, EditorSelection, EditorState, Prec } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { indentUnit } from "@codemirror/language";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import { oneDark } from "@codemirror/theme-one-dark";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { python } from "@codemirror/lang-python";
import { javascript } from "@codemirror/lang-javascript";
import { cpp } from "@codemirror/lang-cpp";
import { java } from "@codemirror/lang-java";

const LANGUAGES = {
  python: () => python(),
  javascript: () => javascript(),
  node: () => javascript(),
  typescript: () => javascript({ typescript: true }),
  c: () => cpp(),
  cpp: () => cpp(),
  java: () => java(),
};

// what Tab and auto-indent insert: PEP 8's four spaces for Python (CodeMirror's default is two)
const INDENT = { javascript: "  ", node: "  ", typescript: "  " };

function languageSupport(name) {
  const make = LANGUAGES[name];
  return [make ? make() : [], indentUnit.of(INDENT[name] || "    ")];
}

// create({parent, doc, language, dark, onChange(text), onRun()})
//   -> {view, getCode, setCode, setLanguage, setDark, setProblems, goTo, focus}
export function create({ parent, doc = "", language = "python", dark = false, onChange = () => {}, onRun = () => {} }) {
  const languageSlot = new Compartment();
  const themeSlot = new Compartment();
  // a programmatic setCode must not look like typing to the autosave
  let quiet = false;
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        basicSetup,
        // Mod-Enter is "insert blank line" in the default keymap; here it runs the code
        Prec.highest(keymap.of([{ key: "Mod-Enter", run: () => { onRun(); return true; } }])),
        keymap.of([indentWithTab]),
        languageSlot.of(languageSupport(language)),
        themeSlot.of(dark ? oneDark : []),
        // the markers of a run's errors (and of other panels' diagnostics) in the gutter
        lintGutter(),
        EditorView.updateListener.of((update) => {
          if (!update.docChanged || quiet) return;
          // a paste starts a revision of its own in the code history
          const paste = update.transactions.some((tr) => tr.isUserEvent("input.paste"));
          onChange(update.state.doc.toString(), { paste });
        }),
        EditorView.contentAttributes.of({ "aria-label": "Code editor" }),
      ],
    }),
  });
  return {
    view,
    getCode: () => view.state.doc.toString(),
    setCode(text) {
      quiet = true;
      try {
        view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
      } finally {
        quiet = false;
      }
    },
    setLanguage(name) {
      view.dispatch({ effects: languageSlot.reconfigure(languageSupport(name)) });
    },
    setDark(dark) {
      view.dispatch({ effects: themeSlot.reconfigure(dark ? oneDark : []) });
    },
    // problems: [{line, column?, endColumn?, severity: "error"|"warning"|"info", message}], 1-based;
    // each becomes a gutter marker and an underline (the whole line when no column is known)
    setProblems(problems) {
      const doc = view.state.doc;
      const diagnostics = [];
      for (const problem of problems) {
        if (!(problem.line >= 1 && problem.line <= doc.lines)) continue;
        const line = doc.line(problem.line);
        const text = line.text;
        const firstNonSpace = line.from + (text.length - text.trimStart().length);
        let from = problem.column ? Math.min(line.from + problem.column - 1, line.to) : firstNonSpace;
        let to = problem.endColumn ? Math.min(line.from + problem.endColumn - 1, line.to) : line.to;
        // a compiler's column just past the end ("expected ';'") marks the line's last character
        if (from >= line.to && line.to > line.from) from = line.to - 1;
        if (to <= from) to = Math.min(from + 1, line.to);
        if (to <= from) from = line.from;
        diagnostics.push({ from, to, severity: problem.severity || "error", message: problem.message, source: problem.source });
      }
      view.dispatch(setDiagnostics(view.state, diagnostics));
    },
    goTo(lineNumber, column) {
      const doc = view.state.doc;
      const line = doc.line(Math.max(1, Math.min(lineNumber, doc.lines)));
      const at = Math.min(line.from + Math.max(0, (column || 1) - 1), line.to);
      view.dispatch({ selection: EditorSelection.cursor(at), scrollIntoView: true });
      view.focus();
    },
    focus: () => view.focus(),
  };
}

// createTerminal({parent, dark, onData(text), label}) -> {terminal, fit()}: the output pane's
// terminal. It interprets \r, ANSI colours and cursor moves; scrollback bounds what it keeps
export function createTerminal({ parent, dark = true, onData = null, scrollback = 20000 }) {
  const terminal = new Terminal({
    convertEol: true,
    scrollback,
    disableStdin: !onData,
    cursorBlink: false,
    cursorStyle: "bar",
    cursorInactiveStyle: "none",
    fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace',
    fontSize: 13,
    theme: terminalTheme(dark),
  });
  const fitAddon = new FitAddon();
  terminal.loadAddon(fitAddon);
  terminal.open(parent);
  if (onData) terminal.onData(onData);
  const fit = () => {
    try {
      fitAddon.fit();
    } catch (error) {
      // a hidden pane has no size; the next resize fits it
    }
  };
  fit();
  new ResizeObserver(fit).observe(parent);
  return { terminal, fit, setDark: (value) => { terminal.options.theme = terminalTheme(value); } };
}

function terminalTheme(dark) {
  return dark
    // ANSI colours readable on the dark pane (xterm's own red, #cd3131, is 3.6:1 there; this one 7.3:1):
    // stderr and tracebacks are what a learner most needs to read
    ? { background: "#0f1420", foreground: "#e6e9ef", cursor: "#e6e9ef", selectionBackground: "#3a4a6b",
        red: "#ff7b72", brightRed: "#ffa198", green: "#7ee787", yellow: "#e3b341", blue: "#79c0ff" }
    : { background: "#fbfcfd", foreground: "#1d2330", cursor: "#1d2330", selectionBackground: "#c6d7f5",
        red: "#b42318", green: "#1d7a3a", yellow: "#8a5a00", blue: "#2457c5", brightBlack: "#5f6b7a" };
}
