// Imports run one way (docs/architecture.md): core imports nothing of ours, the CLI and the server never import
// each other, and inside the server each slice is routes -> service -> data access, never back, with no slice
// importing another (what they share lives outside them: src/api/, src/audit/, src/db/, src/authenticated.ts). A
// type-only import counts: it ties the two modules together all the same. `npm run check` runs this file.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Repository-relative, `/`-separated. */
type RepoPath = string;

/** The import specifiers of each file. */
type Sources = ReadonlyMap<RepoPath, readonly string[]>;

/** Every source file under packages/ (sources, tests, bins), without dist/ and node_modules/. */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name === "dist") continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(entry.name) && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Import and export-from declarations, dynamic imports and require calls, as TypeScript's scanner finds them. */
function specifiersOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

function repositorySources(): Sources {
  const sources = new Map<RepoPath, string[]>();
  for (const file of sourceFiles(join(root, "packages"))) {
    sources.set(relative(root, file).split(sep).join("/"), specifiersOf(readFileSync(file, "utf8")));
  }
  return sources;
}

/**
 * The file a relative specifier names (`./x.js` is `x.ts` under NodeNext resolution), or null for a package.
 * A `.js` that exists as itself (a bin's script) stays `.js`.
 */
function resolveRelative(from: RepoPath, specifier: string): RepoPath | null {
  if (!specifier.startsWith(".")) return null;
  const target = relative(root, resolve(root, dirname(from), specifier))
    .split(sep)
    .join("/");
  const asTs = target.replace(/\.js$/, ".ts").replace(/\.mjs$/, ".mts");
  if (asTs !== target && !existsSync(join(root, asTs)) && existsSync(join(root, target))) return target;
  return /\.[cm]?[jt]s$/.test(asTs) ? asTs : `${asTs}.ts`;
}

type Package = "core" | "cli" | "server";

/** Which of our packages a file or a package specifier belongs to. */
function packageOf(pathOrSpecifier: string): Package | null {
  const match = /^(?:packages\/|@latchkey\/)(core|cli|server)(?:\/|$)/.exec(pathOrSpecifier);
  return match ? (match[1] as Package) : null;
}

const SERVER_SRC = "packages/server/src/";

/** The layer a server file's name puts it in: routes (and the HTML they send), service or data access. */
function layerOf(path: RepoPath): "routes" | "service" | "data" | null {
  if (!path.startsWith(SERVER_SRC)) return null;
  const name = path.slice(path.lastIndexOf("/") + 1);
  if (name === "routes.ts" || name === "pages.ts") return "routes";
  if (name === "service.ts") return "service";
  if (name === "data.ts") return "data";
  return null;
}

/** The folders of src/ that hold what the slices share; every other folder of src/ is a slice. */
const SHARED_FOLDERS: ReadonlySet<string> = new Set(["api", "audit", "db"]);

/** The server slice a file is in. */
function sliceOf(path: RepoPath): string | null {
  if (!path.startsWith(SERVER_SRC)) return null;
  const parts = path.slice(SERVER_SRC.length).split("/");
  return parts.length > 1 && !SHARED_FOLDERS.has(parts[0]!) ? parts[0]! : null;
}

/** Every statement of `sources` that breaks a rule of the module comment, one line each. */
function violations(sources: Sources): string[] {
  const problems: string[] = [];
  const edges = new Map<RepoPath, RepoPath[]>();
  for (const [file, specifiers] of sources) {
    edges.set(
      file,
      specifiers.map((s) => resolveRelative(file, s)).filter((t): t is RepoPath => t !== null),
    );
  }
  const reached = new Map<RepoPath, Set<RepoPath>>();
  const reach = (file: RepoPath): Set<RepoPath> => {
    let seen = reached.get(file);
    if (seen) return seen;
    seen = new Set();
    const stack = [...(edges.get(file) ?? [])];
    while (stack.length > 0) {
      const next = stack.pop()!;
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(...(edges.get(next) ?? []));
    }
    reached.set(file, seen);
    return seen;
  };
  for (const [file, specifiers] of sources) {
    const own = packageOf(file);
    for (const specifier of specifiers) {
      const target = resolveRelative(file, specifier);
      const other = packageOf(target ?? specifier);
      const says = `${file} imports ${specifier}`;
      if (own === "core" && (target === null ? other !== null : !target.startsWith("packages/core/")))
        problems.push(`${says}: core imports nothing of ours`);
      // Test tooling both sides' tests share lives outside either package (e2e/support/).
      if ((own === "cli" && other === "server") || (own === "server" && other === "cli"))
        problems.push(`${says}: the CLI and the server never import each other`);
      if (target === null) continue;
      const layer = layerOf(file);
      if (layer === "data" && !/^packages\/server\/src\/(db\/|[^/]+\/(migration|data)\.ts$)/.test(target))
        problems.push(`${says}: data access imports only db/, table types and other data access`);
      if (layer === "routes" && layerOf(target) === "data")
        problems.push(`${says}: routes reach data access through their service`);
      const slice = sliceOf(file);
      const targetSlice = sliceOf(target);
      if (slice !== null && targetSlice !== null && targetSlice !== slice)
        problems.push(`${says}: the ${slice} slice never imports the ${targetSlice} slice`);
    }
    const layer = layerOf(file);
    const slice = sliceOf(file);
    for (const reachable of reach(file)) {
      const theirs = layerOf(reachable);
      if (layer === "data" && (theirs === "service" || theirs === "routes"))
        problems.push(`${file} reaches ${reachable}: data access never imports its callers`);
      if (layer === "service" && theirs === "routes")
        problems.push(`${file} reaches ${reachable}: a service never imports routes`);
      const elsewhere = sliceOf(reachable);
      if (slice !== null && elsewhere !== null && elsewhere !== slice && theirs !== null)
        problems.push(
          `${file} reaches ${reachable}: the ${slice} slice never depends on the ${elsewhere} slice`,
        );
    }
  }
  return problems;
}

describe("import direction", () => {
  it("holds in the repository", () => {
    const sources = repositorySources();
    // The walk found the packages and the server's slices (an empty walk would pass anything).
    for (const file of [
      "packages/core/src/index.ts",
      "packages/cli/src/cli.ts",
      "packages/server/src/sync/routes.ts",
      "packages/server/src/identity/routes.ts",
    ])
      expect(sources.has(file), file).toBe(true);
    expect(violations(sources)).toEqual([]);
  });

  // Each rule, broken on purpose in a small made-up tree, is reported.
  const base: [RepoPath, string[]][] = [
    ["packages/core/src/index.ts", ["./errors.js", "node:crypto"]],
    ["packages/core/src/errors.ts", []],
    ["packages/cli/src/cli.ts", ["@latchkey/core", "commander"]],
    ["packages/server/src/db/schema.ts", ["../identity/migration.js", "../sync/migration.js"]],
    ["packages/server/src/audit/data.ts", ["../db/schema.js", "kysely"]],
    ["packages/server/src/shared.ts", []],
    ["packages/server/src/app.ts", ["./identity/routes.js", "./sync/routes.js"]],
    ...["identity", "sync"].flatMap((slice): [RepoPath, string[]][] => [
      [
        `packages/server/src/${slice}/routes.ts`,
        ["./service.js", "./pages.js", "../shared.js", "@latchkey/core"],
      ],
      [`packages/server/src/${slice}/pages.ts`, []],
      [`packages/server/src/${slice}/service.ts`, ["./data.js", "./rules.js", "../audit/data.js"]],
      [`packages/server/src/${slice}/rules.ts`, ["./data.js"]],
      [`packages/server/src/${slice}/data.ts`, ["../db/schema.js", "./migration.js", "kysely"]],
      [`packages/server/src/${slice}/migration.ts`, ["kysely"]],
    ]),
  ];
  const withImport = (file: RepoPath, specifier: string): Sources =>
    new Map(base.map(([f, s]) => [f, f === file ? [...s, specifier] : s]));

  it("passes the made-up tree as it is", () => {
    expect(violations(new Map(base))).toEqual([]);
  });

  it.each([
    ["packages/core/src/errors.ts", "@latchkey/cli", "core imports nothing of ours"],
    ["packages/core/src/errors.ts", "../../server/src/app.js", "core imports nothing of ours"],
    ["packages/cli/src/cli.ts", "@latchkey/server", "never import each other"],
    ["packages/cli/src/cli.ts", "../../server/src/sync/data.js", "never import each other"],
    ["packages/server/src/app.ts", "@latchkey/cli/src/context.js", "never import each other"],
    ["packages/server/src/sync/data.ts", "./service.js", "data access never imports its callers"],
    ["packages/server/src/sync/data.ts", "./rules.js", "data access imports only db/"],
    ["packages/server/src/audit/data.ts", "../sync/routes.js", "data access never imports its callers"],
    ["packages/server/src/identity/service.ts", "./routes.js", "a service never imports routes"],
    ["packages/server/src/identity/rules.ts", "./pages.js", "a service never imports routes"],
    ["packages/server/src/sync/routes.ts", "./data.js", "routes reach data access through their service"],
    ["packages/server/src/identity/service.ts", "../sync/routes.js", "never imports the sync slice"],
    ["packages/server/src/identity/rules.ts", "../sync/migration.js", "never imports the sync slice"],
    ["packages/server/src/shared.ts", "./app.js", "the identity slice never depends on the sync slice"],
  ])("reports %s importing %s", (file, specifier, rule) => {
    const found = violations(withImport(file, specifier));
    expect(found.length).toBeGreaterThan(0);
    expect(found.join("\n")).toContain(rule);
  });
});
