// No source file casts what JSON.parse returns (eslint.config.js, no-restricted-syntax): data from a file or the
// network is read through its schema. The rule is taken from the repository's own ESLint configuration, shown to
// fire on made-up code (a cast over several lines included), and run over every source file, so this test fails
// on a cast even where nobody runs `npm run lint`.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint, Linter } from "eslint";
import tseslint from "typescript-eslint";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The `no-restricted-syntax` setting ESLint applies to `file` (repository-relative). */
async function restrictedSyntaxFor(file: string): Promise<Linter.RuleEntry | undefined> {
  const config = (await new ESLint({ cwd: root }).calculateConfigForFile(file)) as Linter.Config;
  return config.rules?.["no-restricted-syntax"];
}

const rule = await restrictedSyntaxFor("packages/cli/src/cli.ts");

/** The messages the rule gives for `code`. */
function violations(code: string): string[] {
  if (rule === undefined) throw new Error("no-restricted-syntax is not configured for packages/cli/src");
  const linter = new Linter({ configType: "flat" });
  const messages = linter.verify(
    code,
    [
      {
        files: ["**/*.ts"],
        languageOptions: { parser: tseslint.parser },
        rules: { "no-restricted-syntax": rule },
      },
    ],
    { filename: "made-up.ts" },
  );
  const fatal = messages.find((m) => m.fatal === true);
  if (fatal !== undefined) throw new Error(`the code does not parse: ${fatal.message}`);
  // Only this rule runs, so the files' own eslint-disable comments for other rules have nothing to say here.
  return messages.filter((m) => m.ruleId === "no-restricted-syntax").map((m) => `${m.line}: ${m.message}`);
}

/** Every TypeScript source of packages/*\/src but the tests. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sources(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") && !entry.name.endsWith(".d.ts"))
      out.push(path);
  }
  return out;
}

describe("JSON.parse is never cast", () => {
  it.each([
    ["on one line", "const a = JSON.parse(text) as Config;"],
    ["to unknown", "const a = JSON.parse(text) as unknown;"],
    ["in parentheses", "const a = (JSON.parse(text)) as Config;"],
    ["as an angle-bracket assertion", "const a = <Config>JSON.parse(text);"],
    ["twice over", "const a = JSON.parse(text) as unknown as Config;"],
    [
      "over several lines",
      'const a = JSON.parse(\n  new TextDecoder("utf-8").decode(bytes),\n) as {\n  name?: unknown;\n};',
    ],
    ["with the type on lines of its own", "const a = JSON.parse(\n  text,\n) as\n  | Config\n  | null;"],
    ["inside an expression", "use((JSON.parse(text) as { a: number }).a);"],
  ])("refuses a cast %s", (_, code) => {
    expect(violations(code)).toHaveLength(1);
  });

  it.each([
    ["read as unknown", "const a: unknown = JSON.parse(text);"],
    ["checked by a schema", "const a = checkSchema(schema, JSON.parse(text));"],
    ["another call cast", "const a = JSON.stringify(value) as string;"],
  ])("allows JSON.parse %s", (_, code) => {
    expect(violations(code)).toEqual([]);
  });

  it("applies to the packages' sources, not to their tests", async () => {
    expect(rule).toBeDefined();
    expect(await restrictedSyntaxFor("packages/server/src/main.ts")).toEqual(rule);
    expect(await restrictedSyntaxFor("packages/cli/src/cli.test.ts")).toBeUndefined();
  });

  it("holds in every source file of packages/*/src", () => {
    const found: string[] = [];
    for (const dir of readdirSync(join(root, "packages"))) {
      for (const file of sources(join(root, "packages", dir, "src"))) {
        const name = relative(root, file).split(sep).join("/");
        for (const v of violations(readFileSync(file, "utf8"))) found.push(`${name}:${v}`);
      }
    }
    expect(found).toEqual([]);
  });
});
