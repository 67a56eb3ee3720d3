import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createTestContext } from "../test/support/context.js";
import { runCli } from "./cli.js";
import { ENVIRONMENT_VARIABLES, environmentMarkdown, isDeclaredVariable } from "./env-vars.js";
import { DEFAULT_KEYRING_TIMEOUT_MS } from "./keystore/keyring.js";
import { DEFAULT_PROVIDER_TIMEOUT_MS, MAX_PROVIDER_DEPTH } from "./registry/provider-client.js";

const SRC = fileURLToPath(new URL(".", import.meta.url));

/** The CLI's own sources (tests excluded), by path relative to src/. */
function sources(): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(SRC, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts") || entry.name.endsWith(".test.ts")) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path.slice(SRC.length), readFileSync(path, "utf8"));
  }
  return files;
}

/**
 * The LATCHKEY_* variables the sources read from an environment: `env.NAME`, `env?.NAME`, `env["NAME"]`, and
 * `env[CONSTANT]` where some source declares `CONSTANT = "NAME"`.
 */
function variablesRead(files: ReadonlyMap<string, string>): Map<string, string> {
  const constants = new Map<string, string>();
  for (const text of files.values())
    for (const m of text.matchAll(/\b([A-Z][A-Z0-9_]*)\s*=\s*"(LATCHKEY_[A-Z0-9_]+)"/g))
      constants.set(m[1]!, m[2]!);
  const read = new Map<string, string>();
  for (const [file, text] of files) {
    for (const m of text.matchAll(/\benv\??\.(LATCHKEY_[A-Z0-9_]+)/g)) read.set(m[1]!, file);
    for (const m of text.matchAll(/\benv\[\s*["'`](LATCHKEY_[A-Z0-9_]+)["'`]\s*\]/g)) read.set(m[1]!, file);
    for (const m of text.matchAll(/\benv\[\s*([A-Z][A-Z0-9_]*)\s*\]/g)) {
      const name = constants.get(m[1]!);
      if (name !== undefined) read.set(name, file);
    }
  }
  return read;
}

describe("the environment variable table", () => {
  const files = sources();

  it("declares every LATCHKEY_* variable a source reads", () => {
    const read = variablesRead(files);
    // The scan must see reads through each spelling, or an undeclared one would pass unnoticed.
    expect(read.get("LATCHKEY_HOME")).toBe("paths.ts");
    expect(read.get("LATCHKEY_KEYRING_TIMEOUT_MS")).toBeDefined();
    expect(read.get("LATCHKEY_ALLOW_PROJECT_CREDENTIALS")).toBeDefined();
    expect(read.get("LATCHKEY_PROVIDER_DEPTH")).toBeDefined();
    const undeclared = [...read].filter(([name]) => !isDeclaredVariable(name));
    expect(undeclared, "declare these in src/env-vars.ts").toEqual([]);
  });

  it("declares every LATCHKEY_* name the sources mention (help texts, messages, variables set for children)", () => {
    const undeclared: string[] = [];
    for (const [file, text] of files) {
      // Build-time defines (__LATCHKEY_VERSION__) are not environment variables.
      for (const m of text.matchAll(/(?<![A-Za-z0-9_])LATCHKEY_[A-Z0-9_]*/g)) {
        const name = m[0];
        const prefix = name.endsWith("_") && ENVIRONMENT_VARIABLES.some((v) => v.name.startsWith(name));
        if (!prefix && !isDeclaredVariable(name)) undeclared.push(`${file}: ${name}`);
      }
    }
    expect(undeclared, "declare these in src/env-vars.ts").toEqual([]);
  });

  it("`latchkey --help` lists every variable with its meaning", async () => {
    const ctx = createTestContext();
    expect(await runCli(["--help"], ctx)).toBe(0);
    const help = ctx.stdout.text().replace(/\s+/g, " ");
    for (const v of ENVIRONMENT_VARIABLES) {
      expect(help).toContain(` ${v.name} `);
      expect(help).toContain(v.meaning);
      if (v.default !== undefined) expect(help).toContain(`(default ${v.default})`);
    }
  });

  it("docs/environment.md matches the table (run `npm run docs` to regenerate)", () => {
    const committed = readFileSync(new URL("../../../docs/environment.md", import.meta.url), "utf8");
    expect(committed).toBe(environmentMarkdown());
  });

  it("states the defaults the code uses", () => {
    const byName = new Map(ENVIRONMENT_VARIABLES.map((v) => [v.name, v]));
    expect(byName.get("LATCHKEY_KEYRING_TIMEOUT_MS")?.default).toBe(String(DEFAULT_KEYRING_TIMEOUT_MS));
    expect(byName.get("LATCHKEY_PROVIDER_TIMEOUT_MS")?.default).toBe(String(DEFAULT_PROVIDER_TIMEOUT_MS));
    expect(byName.get("LATCHKEY_PROVIDER_DEPTH")?.meaning).toContain(`stops at ${MAX_PROVIDER_DEPTH}`);
    expect(new Set(ENVIRONMENT_VARIABLES.map((v) => v.name)).size).toBe(ENVIRONMENT_VARIABLES.length);
  });
});
