import { StringStream } from "@codemirror/language";
import { describe, expect, it } from "vitest";
import { qasmParser, type QasmState } from "./qasm";

function tokens(lines: string[]): [string, string | null][] {
  const state: QasmState = qasmParser.startState!(2);
  const out: [string, string | null][] = [];
  for (const line of lines) {
    const stream = new StringStream(line, 2, 2);
    while (!stream.eol()) {
      const style = qasmParser.token(stream, state);
      const text = stream.current();
      if (text.trim()) out.push([text.trim(), style]);
      stream.start = stream.pos;
    }
  }
  return out;
}

describe("qasm highlighting", () => {
  it("classifies keywords, gates, numbers and comments", () => {
    expect(tokens(['OPENQASM 3.0; // header', "qubit[2] q;", "rx(pi/2) q[0];"])).toEqual([
      ["OPENQASM", "keyword"],
      ["3.0", "number"],
      [";", "punctuation"],
      ["// header", "comment"],
      ["qubit", "keyword"],
      ["[", "bracket"],
      ["2", "number"],
      ["]", "bracket"],
      ["q", "variableName"],
      [";", "punctuation"],
      ["rx", "builtin"],
      ["(", "bracket"],
      ["pi", "atom"],
      ["/", "operator"],
      ["2", "number"],
      [")", "bracket"],
      ["q", "variableName"],
      ["[", "bracket"],
      ["0", "number"],
      ["]", "bracket"],
      [";", "punctuation"],
    ]);
  });

  it("keeps block comments open across lines", () => {
    expect(tokens(["/* a", "b */ measure"])).toEqual([
      ["/* a", "comment"],
      ["b */", "comment"],
      ["measure", "keyword"],
    ]);
  });

  it("highlights strings and measurement arrows", () => {
    expect(tokens(['include "qelib1.inc";', "measure q -> c;"])).toEqual([
      ["include", "keyword"],
      ['"qelib1.inc"', "string"],
      [";", "punctuation"],
      ["measure", "keyword"],
      ["q", "variableName"],
      ["->", "operator"],
      ["c", "variableName"],
      [";", "punctuation"],
    ]);
  });
});
