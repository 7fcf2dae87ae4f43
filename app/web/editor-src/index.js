// The editor component of the browser editor: CodeMirror 6 with the languages the engine runs.
// Rebuild the vendored bundle after changing this file or package.json:
//   cd app/web/editor-src && npm ci && npm run build
// which writes ../static/vendor/codemirror.js (committed; node_modules is not).
import { basicSetup, EditorView } from "codemirror";
import { Compartment, EditorState, Prec } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
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

// create({parent, doc, language, onChange(text), onRun()}) -> {view, getCode, setCode, setLanguage, focus}
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
        EditorView.updateListener.of((update) => {
          if (update.docChanged && !quiet) onChange(update.state.doc.toString());
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
    focus: () => view.focus(),
  };
}
