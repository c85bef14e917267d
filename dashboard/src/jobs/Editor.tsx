import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import {
  bracketMatching,
  HighlightStyle,
  StreamLanguage,
  syntaxHighlighting,
} from "@codemirror/language";
import { EditorState } from "@codemirror/state";
import { EditorView, highlightActiveLine, keymap, lineNumbers } from "@codemirror/view";
import { tags } from "@lezer/highlight";
import { useEffect, useRef } from "react";
import { qasmParser } from "./qasm";

const qasm = StreamLanguage.define(qasmParser);

// Colours come from CSS variables so the editor follows the light/dark mode.
const highlight = HighlightStyle.define([
  { tag: tags.keyword, color: "var(--qpi-code-keyword)", fontWeight: "600" },
  { tag: tags.typeName, color: "var(--qpi-code-type)" },
  { tag: tags.standard(tags.variableName), color: "var(--qpi-code-gate)" },
  { tag: tags.number, color: "var(--qpi-code-number)" },
  { tag: tags.atom, color: "var(--qpi-code-number)" },
  { tag: tags.string, color: "var(--qpi-code-string)" },
  { tag: tags.comment, color: "var(--qpi-code-comment)", fontStyle: "italic" },
  { tag: tags.operator, color: "var(--qpi-code-operator)" },
]);

const theme = EditorView.theme({
  "&": { backgroundColor: "var(--qpi-surface-dim)", color: "var(--qpi-text)", fontSize: "14px" },
  ".cm-content": { fontFamily: "var(--qpi-font-mono)", caretColor: "var(--qpi-text)" },
  ".cm-gutters": { backgroundColor: "var(--qpi-surface-dim)", color: "var(--qpi-text-muted)", border: "none" },
  ".cm-activeLine": { backgroundColor: "var(--qpi-active-line)" },
  "&.cm-focused": { outline: "2px solid var(--qpi-focus)" },
  ".cm-scroller": { minHeight: "16rem", maxHeight: "26rem" },
});

interface EditorProps {
  value: string;
  onChange: (value: string) => void;
  label: string;
}

/** A CodeMirror 6 editor for OpenQASM; `value` replaces the text when changed from outside. */
export function QasmEditor({ value, onChange, label }: EditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    if (!host.current) return;
    const editor = new EditorView({
      parent: host.current,
      state: EditorState.create({
        doc: value,
        extensions: [
          lineNumbers(),
          history(),
          bracketMatching(),
          highlightActiveLine(),
          qasm,
          syntaxHighlighting(highlight),
          theme,
          // Tab indents; Escape then Tab leaves the editor (CodeMirror's keyboard escape hatch).
          keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
          EditorView.contentAttributes.of({ "aria-label": label, "data-testid": "qasm-editor" }),
          EditorView.updateListener.of((update) => {
            if (update.docChanged) changed.current(update.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = editor;
    return () => {
      editor.destroy();
      view.current = null;
    };
    // The editor is created once; later `value` changes are applied below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    const editor = view.current;
    if (editor && editor.state.doc.toString() !== value) {
      editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: value } });
    }
  }, [value]);

  return <div ref={host} className="editor" />;
}
