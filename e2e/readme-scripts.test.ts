// The README's development table is where the next person looks for how to build, test and check: it names every
// npm script of the root package.json, and nothing that is not one.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url);

/** The scripts the rows of README's "## Development" table run (`npm start`, `npm test`, `npm run NAME`). */
function tableScripts(readme: string): string[] {
  const lines = readme.slice(readme.indexOf("\n## Development\n")).split("\n");
  const first = lines.findIndex((line) => line.startsWith("|"));
  const end = lines.findIndex((line, i) => i > first && !line.startsWith("|"));
  return lines.slice(first, end).flatMap((row) => /^\| `npm (?:run )?([\w:-]+)`/.exec(row)?.[1] ?? []);
}

describe("README's development table", () => {
  it("names every npm script, once, and no other", () => {
    const readme = readFileSync(fileURLToPath(new URL("README.md", root)), "utf8");
    const { scripts } = JSON.parse(readFileSync(fileURLToPath(new URL("package.json", root)), "utf8")) as {
      scripts: Record<string, string>;
    };
    const listed = tableScripts(readme);
    expect(listed.length).toBeGreaterThan(0);
    expect([...listed].sort()).toEqual(Object.keys(scripts).sort());
  });
});
