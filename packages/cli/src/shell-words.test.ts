import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseQuotedWords, shellQuote } from "./shell-words.js";

describe("shellQuote / parseQuotedWords", () => {
  it("reads back exactly the words it quoted, whatever they hold", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary" }), { minLength: 1, maxLength: 4 }), (words) => {
        expect(parseQuotedWords(words.map(shellQuote).join(" "))).toEqual(words);
      }),
    );
  });

  it("reads what the shell reads", () => {
    const words = ["/it's a dir/latchkey", "'", "a' 'b", ""];
    const line = words.map(shellQuote).join(" ");
    const argv = execFileSync("sh", ["-c", `for a in ${line}; do printf '%s\\0' "$a"; done`], {
      encoding: "utf8",
    });
    expect(argv.split("\0").slice(0, -1)).toEqual(words);
    expect(parseQuotedWords(line)).toEqual(words);
  });

  it.each(["", "a", "'a' b", "'a'  'b'", "'a''b'", "'a", "'a' ", "'a'\\'"])("refuses %j", (text) => {
    expect(parseQuotedWords(text)).toBeNull();
  });
});
