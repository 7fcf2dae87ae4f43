// The editor component of the browser editor: CodeMirror 6 with the languages the engine runs.
// Rebuild the vendored bundle after changing this file or package.json:
//   cd app/web/editor-src && npm ci && npm run build
// which writes ../static/vendor/codemirror.js (committed; node_modules is not).
import { basicSetup, EditorView } from "codemirror";
import { Compartment, EditorState, Prec } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
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

function languageSupport(name) {
  const make = LANGUAGES[name];
  return make ? make() : [];
}

// a diagnostic of POST /diagnostics (1-based lines, 1-based UTF-16 columns, the units of a JS
// string and so of CodeMirror's offsets) as a CodeMirror diagnostic, clamped to the document
function toCodeMirror(doc, item) {
  const at = (lineNumber, column) => {
    if (lineNumber > doc.lines) return doc.length;
    const line = doc.line(Math.max(1, lineNumber));
    return Math.min(line.to, line.from + Math.max(0, column - 1));
  };
  const from = at(item.line, item.column);
  const to = Math.max(from, at(item.end_line || item.line, item.end_column || item.column));
  const label = item.code ? `${item.message} [${item.code}]` : item.message;
  return { from, to, severity: item.severity === "info" ? "info" : item.severity, message: label, source: item.source };
}

// create({parent, doc, language, onChange(text, {paste}), onRun()})
//   -> {view, getCode, setCode, setLanguage, setProblems, focus}
export function create({ parent, doc = "", language = "python", onChange = () => {}, onRun = () => {} }) {
  const languageSlot = new Compartment();
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
    // squiggles for diagnostics of the engine's shape; [] clears them
    setProblems(items) {
      const doc = view.state.doc;
      view.dispatch(setDiagnostics(view.state, items.map((item) => toCodeMirror(doc, item))));
    },
    // move the cursor to a 1-based line and UTF-16 column, and show it
    reveal(lineNumber, column) {
      const doc = view.state.doc;
      const line = doc.line(Math.min(Math.max(1, lineNumber), doc.lines));
      const pos = Math.min(line.to, line.from + Math.max(0, column - 1));
      view.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
      view.focus();
    },
    focus: () => view.focus(),
  };
}
