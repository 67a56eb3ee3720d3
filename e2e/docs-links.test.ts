// A clone holds only this repository: a link from the README or docs/ to a file outside it (the planning folder
// beside the repository, say) is a dead link for every maintainer and user, and so is a link to a file that was
// renamed. Every relative link must name a file inside the repository that exists.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Markdown files a reader of the repository meets: the READMEs and everything under docs/. */
function documents(): string[] {
  const docs = readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => join(root, "docs", name));
  return [join(root, "README.md"), join(root, "bench", "README.md"), ...docs].filter((file) =>
    existsSync(file),
  );
}

/** Relative targets of Markdown links and of inline-code paths that climb out with `../`. */
function references(text: string): string[] {
  const out: string[] = [];
  for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = match[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("#")) continue;
    out.push(target.split("#")[0]!);
  }
  for (const match of text.matchAll(/`(\.\.\/[^`\s]+)`/g)) out.push(match[1]!);
  return out.filter((target) => target !== "");
}

describe("README and docs/", () => {
  it("link only to files inside the repository that exist", () => {
    const problems: string[] = [];
    for (const file of documents()) {
      for (const target of references(readFileSync(file, "utf8"))) {
        const absolute = resolve(dirname(file), target);
        const inside = relative(root, absolute);
        if (inside.startsWith(".."))
          problems.push(`${relative(root, file)}: ${target} is outside the repository`);
        else if (!existsSync(absolute)) problems.push(`${relative(root, file)}: ${target} does not exist`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("has an architecture document for maintainers", () => {
    const text = readFileSync(join(root, "docs", "architecture.md"), "utf8");
    for (const heading of ["## Parts", "## Formats", "## The server", "## Where to change what"])
      expect(text).toContain(heading);
  });
});
