// The output pane: a run's stdout and stderr written to an xterm.js terminal (which interprets \r,
// ANSI colours and cursor moves). Chunks are queued and written at most once per animation frame,
// never one DOM change per chunk; what is kept is bounded (the start and the end of a huge output,
// with a line saying how much was dropped), so no output can freeze the tab.
(function () {
  "use strict";

  // what the pane keeps of one run: the first HEAD_CHARS and the last (LIMIT_CHARS - HEAD_CHARS)
  const LIMIT_CHARS = 256 * 1024;
  const HEAD_CHARS = 64 * 1024;
  // and in lines (a terminal line costs memory whatever its length): the terminal's scrollback
  // holds all of them, so nothing kept is scrolled away
  const HEAD_LINES = 2000;
  const TAIL_LINES = 8000;
  // past the limit the terminal is redrawn from head + tail, at most this often
  const OVERFLOW_REDRAW_MS = 300;
  const WRITE_SLICE_CHARS = 4096;
  const STDERR_ON = "\x1b[31m";
  const STDERR_OFF = "\x1b[39m";
  const STDIN_ON = "\x1b[32m";
  const STDIN_OFF = "\x1b[39m";

  // lines of a Node stack that are the engine's warm bootstrap or Node's own internals, not the learner's
  const ENGINE_FRAME = /^\s+at (?:.*\((?:node:|\[eval\])[^)]*\)|node:\S+|\[eval\]\S*)\s*$|^Node\.js v\d+\.\d+\.\d+\s*$/;
  // the sandbox runs the learner's file as /box/<file>: the learner knows it as <file>
  const BOX_PATH = /\/box\//g;

  // what a stderr line looks like to the learner, or null to leave it out
  function cleanErrorLine(line) {
    if (ENGINE_FRAME.test(line)) return null;
    return line.replace(BOX_PATH, "");
  }

  // could this unfinished stderr line, once finished, be one ENGINE_FRAME leaves out?
  function mayBeEngineFrame(partial) {
    return /^\s+(?:a|at(?:\s.*)?)?$/.test(partial) || (partial.length > 0 && "Node.js v".startsWith(partial.slice(0, 9)));
  }

  // the end of text, at most count lines of it
  function lastLines(text, count) {
    let at = text.length;
    for (let seen = 0; seen < count; seen++) {
      at = text.lastIndexOf("\n", at - 1);
      if (at <= 0) return text;
    }
    return text.slice(at + 1);
  }

  class OutputPane {
    // new OutputPane(parent, {onLink(line, column), onInput(text)})
    constructor(parent, { onLink = null, onInput = null, onInterrupt = null, dark = true } = {}) {
      this.parent = parent;
      this.onInput = onInput;
      const { terminal, fit, setDark } = CodeEditor.createTerminal({
        parent, dark, onData: (data) => this.typed(data), scrollback: HEAD_LINES + TAIL_LINES + 100,
      });
      this.terminal = terminal;
      this.fit = fit;
      this.setDark = setDark;
      terminal.attachCustomKeyEventHandler((event) => {
        // Tab moves on to the next control, as everywhere on the page: the pane is no keyboard trap
        if (event.key === "Tab") return false;
        // Ctrl+C in the pane stops the run (any run, not only a console's); with text selected it copies
        if (onInterrupt && event.type === "keydown" && event.ctrlKey && !event.shiftKey && event.key.toLowerCase() === "c" && !terminal.hasSelection()) {
          onInterrupt();
          return false;
        }
        return true;
      });
      if (onLink) this.installLinks(onLink);
      this.inputEnabled = false;
      this.reset();
    }

    reset() {
      this.queue = [];
      this.frame = null;
      this.total = 0; // characters of terminal text this run
      this.head = ""; // its first HEAD_CHARS characters
      this.headLines = 0;
      this.headFull = false;
      this.tail = ""; // the newest of the ones after the head, at most LIMIT_CHARS - HEAD_CHARS
      this.dropped = 0;
      this.overflowDrawnAt = 0;
      this.stderrPartial = "";
      this.pendingWrites = 0;
      // writes handed to xterm before a reset report back under an older generation: not counted
      this.generation = (this.generation || 0) + 1;
      this.line = ""; // what the learner typed since the last Enter (console)
      this.shown = ""; // the part of it on screen now
      clearTimeout(this.redrawTimer);
      this.redrawTimer = null;
      this.terminal.reset();
      this.parent.dataset.empty = "true";
      this.parent.dataset.dropped = "0";
    }

    // queue text of a stream; it reaches the terminal at the next animation frame
    write(stream, text) {
      if (!text) return;
      this.queue.push([stream, text]);
      this.schedule();
    }

    // the run ended: what a stderr line held back for filtering goes out too
    end() {
      if (this.stderrPartial) {
        this.queue.push(["stderr-end", ""]);
        this.schedule();
      }
    }

    schedule() {
      if (this.frame === null) this.frame = requestAnimationFrame(() => this.render());
    }

    // the queue as one write. The line the learner is typing (the console) is taken off the screen
    // while program output is written and put back after it, so output never splits a typed word
    render() {
      this.frame = null;
      let out = "";
      let hidden = null;
      for (const [stream, text] of this.queue) {
        if (stream === "echo" || stream === "echo-back") {
          if (hidden !== null) {
            out += hidden;
            this.shown = hidden;
            hidden = null;
          }
          if (stream === "echo-back") {
            out += "\b \b";
            this.shown = this.shown.slice(0, -1);
          } else {
            out += text;
            this.shown = text === "\n" ? "" : this.shown + text;
          }
          continue;
        }
        if (this.shown && hidden === null) {
          out += "\b".repeat(this.shown.length) + "\x1b[K";
          hidden = this.shown;
          this.shown = "";
        }
        out += this.translate(stream, text);
      }
      if (hidden !== null) {
        out += hidden;
        this.shown = hidden;
      }
      this.queue = [];
      if (out) this.emit(out);
    }

    // a chunk as terminal text: stderr in red, its engine frames left out (whole lines only)
    translate(stream, text) {
      let out = "";
      if (stream === "stdout" || stream === "stdin" || stream === "echo") {
        if (this.stderrPartial) {
          out += STDERR_ON + this.stderrPartial.replace(BOX_PATH, "") + STDERR_OFF;
          this.stderrPartial = "";
        }
        // what the learner typed: echoed as typed; sent from elsewhere (another tab, the run's
        // request): shown in green, as input
        if (stream === "stdin") return out + STDIN_ON + text + STDIN_OFF;
        return out + text;
      }
      const whole = this.stderrPartial + text;
      // an unfinished line waits for its end only while it could still be an engine frame
      // (a progress bar on stderr, "\r 50%", must not wait for the run to end)
      let cut = whole.lastIndexOf("\n") + 1;
      if (stream === "stderr-end" || !mayBeEngineFrame(whole.slice(cut))) cut = whole.length;
      this.stderrPartial = whole.slice(cut);
      const lines = whole.slice(0, cut).split("\n");
      const kept = [];
      lines.forEach((line, index) => {
        const last = index === lines.length - 1;
        if (last) {
          if (line) kept.push(line.replace(BOX_PATH, ""));
          return;
        }
        const clean = cleanErrorLine(line);
        if (clean !== null) kept.push(clean + "\n");
      });
      const joined = kept.join("");
      return joined ? STDERR_ON + joined + STDERR_OFF : "";
    }

    emit(text) {
      this.parent.dataset.empty = "false";
      this.total += text.length;
      let rest = text;
      if (!this.headFull) {
        let take = Math.min(text.length, HEAD_CHARS - this.head.length);
        for (let at = text.indexOf("\n"); at !== -1 && at < take; at = text.indexOf("\n", at + 1)) {
          this.headLines += 1;
          if (this.headLines >= HEAD_LINES) take = at + 1;
        }
        this.head += text.slice(0, take);
        rest = text.slice(take);
        this.headFull = this.head.length >= HEAD_CHARS || this.headLines >= HEAD_LINES;
      }
      // the newest characters past the head; what falls out of it is dropped
      this.tail = lastLines((this.tail + rest).slice(-(LIMIT_CHARS - HEAD_CHARS)), TAIL_LINES);
      this.dropped = this.total - this.head.length - this.tail.length;
      if (!this.dropped) {
        this.send(text);
        return;
      }
      this.parent.dataset.dropped = String(this.dropped);
      if (performance.now() - this.overflowDrawnAt >= OVERFLOW_REDRAW_MS) {
        this.redraw();
      } else if (!this.redrawTimer) {
        this.redrawTimer = setTimeout(() => {
          this.redrawTimer = null;
          this.redraw();
        }, OVERFLOW_REDRAW_MS);
      }
    }

    redraw() {
      this.overflowDrawnAt = performance.now();
      this.terminal.reset();
      const marker = `\r\n\x1b[0;7m … ${this.dropped.toLocaleString()} characters of output not shown: the start and the end are kept … \x1b[0m\r\n`;
      this.send(this.head + marker + this.tail);
    }

    // xterm.js parses one write() in one go but yields to the page between writes once a frame's
    // budget is spent: slices keep each of its tasks short (its parser carries a sequence or a
    // character cut between two slices over)
    send(text) {
      const generation = this.generation;
      for (let at = 0; at < text.length; at += WRITE_SLICE_CHARS) {
        this.pendingWrites += 1;
        this.terminal.write(text.slice(at, at + WRITE_SLICE_CHARS), () => {
          if (this.generation === generation) this.pendingWrites -= 1;
        });
      }
    }

    // true once everything queued is drawn (tests and the run's end use it)
    get settled() {
      return this.queue.length === 0 && this.frame === null && this.pendingWrites === 0 && !this.redrawTimer;
    }

    // the terminal's text, wrapped lines joined (for tests and copying)
    text() {
      const buffer = this.terminal.buffer.active;
      const lines = [];
      for (let y = 0; y < buffer.length; y++) {
        const line = buffer.getLine(y);
        if (!line) continue;
        const text = line.translateToString(true);
        if (line.isWrapped && lines.length) lines[lines.length - 1] += text;
        else lines.push(text);
      }
      while (lines.length && lines[lines.length - 1] === "") lines.pop();
      return lines.join("\n");
    }

    // ---- the console: typing into the pane while an interactive run reads -------------------

    enableInput(enabled) {
      this.inputEnabled = enabled;
      this.terminal.options.disableStdin = !enabled;
      this.terminal.options.cursorBlink = enabled;
      this.parent.dataset.input = enabled ? "on" : "off";
      if (enabled) this.terminal.focus();
    }

    typed(data) {
      if (!this.inputEnabled || !this.onInput) return;
      for (const char of data) {
        if (char === "\r") {
          const line = this.line + "\n";
          this.line = "";
          this.write("echo", "\n");
          this.onInput({ data: line, eof: false });
        } else if (char === "\x04") {
          // Ctrl+D: what is typed goes, then end of input
          const line = this.line;
          this.line = "";
          this.onInput({ data: line, eof: true });
        } else if (char === "\x7f") {
          if (this.line) {
            this.line = this.line.slice(0, -1);
            this.write("echo-back", " ");
          }
        } else if (char >= " ") {
          this.line += char;
          this.write("echo", char);
        }
      }
    }

    // ---- file:line links ----------------------------------------------------------------------

    installLinks(onLink) {
      const pane = this;
      this.terminal.registerLinkProvider({
        provideLinks(y, callback) {
          const line = pane.terminal.buffer.active.getLine(y - 1);
          if (!line) return callback(undefined);
          const text = line.translateToString(true);
          const links = [];
          for (const found of OutputPane.findLocations(text, pane.sourceFile)) {
            links.push({
              range: { start: { x: found.index + 1, y }, end: { x: found.index + found.length, y } },
              text: text.slice(found.index, found.index + found.length),
              decorations: { underline: true, pointerCursor: true },
              activate: () => onLink(found.line, found.column),
            });
          }
          callback(links.length ? links : undefined);
        },
      });
    }

    // where a line of output points into the learner's file: [{index, length, line, column}]
    static findLocations(text, sourceFile) {
      const found = [];
      const patterns = [/File "(?:\/box\/)?([^"]+)", line (\d+)()/g, /(?:\/box\/)?([\w.-]+\.(?:py|js|mjs|ts|cpp|cc|cxx|c|h|hpp|java)):(\d+)(?::(\d+))?/g];
      for (const pattern of patterns) {
        for (const match of text.matchAll(pattern)) {
          if (sourceFile && match[1] !== sourceFile) continue;
          found.push({ index: match.index, length: match[0].length, line: Number(match[2]), column: match[3] ? Number(match[3]) : null });
        }
      }
      return found;
    }
  }

  OutputPane.cleanErrorLine = cleanErrorLine;
  window.OutputPane = OutputPane;
})();
