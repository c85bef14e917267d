// OpenQASM 2/3 syntax highlighting for CodeMirror 6 as a small stream ("legacy") mode.
import type { StreamParser, StringStream } from "@codemirror/language";

const KEYWORDS = new Set([
  "OPENQASM", "include", "qreg", "creg", "qubit", "bit", "gate", "opaque", "measure", "reset",
  "barrier", "if", "else", "for", "while", "in", "return", "def", "defcal", "defcalgrammar",
  "cal", "let", "const", "input", "output", "box", "delay", "break", "continue", "end", "ctrl",
  "negctrl", "inv", "pow", "extern", "durationof", "stretch", "switch", "case", "default",
]);
const TYPES = new Set([
  "int", "uint", "float", "angle", "bool", "complex", "duration", "array", "void",
]);
const BUILTINS = new Set([
  "U", "CX", "u", "u1", "u2", "u3", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "sxdg",
  "rx", "ry", "rz", "cx", "cy", "cz", "ch", "ccx", "swap", "cswap", "crx", "cry", "crz", "cu1",
  "cu3", "id", "p", "cp", "ecr", "rzz", "rxx", "gphase",
]);
const CONSTANTS = new Set(["pi", "π", "tau", "τ", "euler", "ℇ", "true", "false"]);

export interface QasmState {
  inBlockComment: boolean;
}

function blockComment(stream: StringStream, state: QasmState): string {
  while (!stream.eol()) {
    if (stream.match("*/")) {
      state.inBlockComment = false;
      return "comment";
    }
    stream.next();
  }
  return "comment";
}

export const qasmParser: StreamParser<QasmState> = {
  name: "openqasm",
  startState: () => ({ inBlockComment: false }),
  copyState: (state) => ({ ...state }),
  token(stream, state) {
    if (state.inBlockComment) return blockComment(stream, state);
    if (stream.eatSpace()) return null;
    if (stream.match("//")) {
      stream.skipToEnd();
      return "comment";
    }
    if (stream.match("/*")) {
      state.inBlockComment = true;
      return blockComment(stream, state);
    }
    if (stream.match(/^"[^"]*"?/)) return "string";
    if (stream.match(/^\d+(\.\d*)?([eE][+-]?\d+)?(ns|us|µs|ms|s|dt)?/) || stream.match(/^\.\d+/)) {
      return "number";
    }
    if (stream.match(/^(->|==|!=|<=|>=|&&|\|\||[+\-*/%=<>!&|^~@])/)) return "operator";
    if (stream.match(/^[[\](){}]/)) return "bracket";
    if (stream.match(/^[;,:]/)) return "punctuation";
    const word = stream.match(/^[A-Za-z_πτℇ]\w*/u) as RegExpMatchArray | null;
    if (word) {
      const text = word[0].trim();
      if (KEYWORDS.has(text)) return "keyword";
      if (TYPES.has(text)) return "typeName";
      if (CONSTANTS.has(text)) return "atom";
      if (BUILTINS.has(text)) return "builtin";
      return "variableName";
    }
    stream.next();
    return null;
  },
  languageData: { commentTokens: { line: "//", block: { open: "/*", close: "*/" } } },
};

export const EXAMPLES: { id: string; label: string; source: string }[] = [
  {
    id: "bell3",
    label: "Bell state (OpenQASM 3)",
    source: `OPENQASM 3.0;
include "stdgates.inc";

qubit[2] q;
bit[2] c;

h q[0];
cx q[0], q[1];
c = measure q;
`,
  },
  {
    id: "bell2",
    label: "Bell state (OpenQASM 2)",
    source: `OPENQASM 2.0;
include "qelib1.inc";

qreg q[2];
creg c[2];

h q[0];
cx q[0], q[1];
measure q -> c;
`,
  },
  {
    id: "ghz3",
    label: "GHZ state, 3 qubits (OpenQASM 3)",
    source: `OPENQASM 3.0;
include "stdgates.inc";

qubit[3] q;
bit[3] c;

h q[0];
cx q[0], q[1];
cx q[1], q[2];
c = measure q;
`,
  },
  {
    id: "superposition",
    label: "Single-qubit superposition (OpenQASM 2)",
    source: `OPENQASM 2.0;
include "qelib1.inc";

qreg q[1];
creg c[1];

h q[0];
measure q[0] -> c[0];
`,
  },
];

export const DEFAULT_SOURCE = EXAMPLES[0]?.source ?? "";
