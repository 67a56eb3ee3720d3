// The completion tree against commander's, `latchkey __complete` on real files, and the three scripts run for
// real (test/support/completion-shells.ts says how): each shell gets the same cases, and a stub `latchkey` on PATH
// answers the scripts' `latchkey __complete` calls and records them.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { availableShells, completeLine, type CompletionShell } from "../../test/support/completion-shells.js";
import { createTestContext } from "../../test/support/context.js";
import { buildProgram, runCli } from "../cli.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { resolvePaths } from "../paths.js";
import { completionTree, type CompletionCommand } from "./completion.js";

const program = buildProgram(createTestContext(), { exitCode: 0 });
const tree = completionTree(program);

function node(path: string): CompletionCommand {
  const found = tree.find((c) => c.path === path);
  if (found === undefined) throw new Error(`no command ${path} in the completion tree`);
  return found;
}

function flag(path: string, name: string) {
  const found = node(path).flags.find((f) => f.names.includes(name));
  if (found === undefined) throw new Error(`no flag ${name} on ${path}`);
  return found;
}

/** Every visible command path of the commander tree, walked independently of completion.ts. */
function visiblePaths(command: Command, prefix = ""): string[] {
  const help = command.createHelp();
  return help.visibleCommands(command).flatMap((sub) => {
    const path = prefix === "" ? sub.name() : `${prefix} ${sub.name()}`;
    return [path, ...(sub.name() === "help" ? [] : visiblePaths(sub, path))];
  });
}

describe("the completion tree", () => {
  it("is the commander tree: every visible command, no hidden one", () => {
    expect(tree.map((c) => c.path).sort()).toEqual(["", ...visiblePaths(program)].sort());
    expect(node("").subcommands.map((s) => s.name)).toContain("completion");
    expect(node("").subcommands.map((s) => s.name)).not.toContain("__complete");
    // Hidden flags (`--token`, refused on purpose; `--verify`, the negation's twin) are not offered.
    expect(node("login").flags.flatMap((f) => f.names)).toEqual(
      expect.arrayContaining(["--no-verify", "--web"]),
    );
    expect(node("login").flags.flatMap((f) => f.names)).not.toContain("--token");
    expect(node("login").flags.flatMap((f) => f.names)).not.toContain("--verify");
  });

  it("completes the vault's environments for a vault --env, and not auth's service --env", () => {
    for (const path of ["run", "env run", "env get", "env set", "env export", "env pull"]) {
      expect(flag(path, "--env").values, path).toEqual({ kind: "dynamic", source: "envs" });
      expect(flag(path, "-e").values, path).toEqual({ kind: "dynamic", source: "envs" });
    }
    expect(flag("auth token", "--env").values).toEqual({ kind: "none" });
  });

  it("completes registries for every --registry and --registry-uri, choices and files where declared", () => {
    const registries = tree.flatMap((c) =>
      c.flags.filter((f) => f.names.includes("--registry") || f.names.includes("--registry-uri")),
    );
    expect(registries.length).toBeGreaterThanOrEqual(7);
    for (const f of registries) expect(f.values).toEqual({ kind: "dynamic", source: "registries" });
    expect(flag("env export", "--format").values).toEqual({
      kind: "choices",
      values: ["dotenv", "json", "shell"],
    });
    expect(flag("credential-provider", "--format").values).toEqual({
      kind: "choices",
      values: ["latchkey", "npm-rfc"],
    });
    expect(flag("login", "--token-file").values).toEqual({ kind: "files" });
    expect(node("completion").args).toEqual([{ kind: "choices", values: ["bash", "zsh", "fish"] }]);
    expect(node("env import").args).toEqual([{ kind: "files" }]);
    expect(node("run").args).toEqual([{ kind: "commandline" }]);
  });
});

describe("latchkey __complete", () => {
  const root = mkdtempSync(join(tmpdir(), "lk-complete-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function context(cwd: string, home: string) {
    const env = { LATCHKEY_HOME: home, HOME: root };
    const keystore = createMemoryKeystore({});
    const resolution = { keystore, backend: "memory" } as unknown as KeystoreResolution;
    return createTestContext({
      env,
      paths: resolvePaths(env),
      cwd,
      clock: { now: () => Date.UTC(2030, 0, 1), sleep: () => Promise.resolve() },
      keystore: () => Promise.resolve(resolution),
    });
  }

  it("lists the vault's environment names, never a value", async () => {
    const project = join(root, "app");
    await mkdir(project, { recursive: true });
    await writeFile(join(project, "package.json"), "{}\n");
    const ctx = context(project, join(root, "home-envs"));
    for (const [env, value] of [
      ["default", "default-secret-9f1"],
      ["staging", "staging-secret-9f1"],
      ["prod", "prod-secret-9f1"],
    ]) {
      expect(await runCli(["env", "set", "--env", env!, `DB=${value!}`], ctx)).toBe(0);
    }
    const before = ctx.stdout.text();
    expect(await runCli(["__complete", "envs"], ctx)).toBe(0);
    const printed = ctx.stdout.text().slice(before.length);
    expect(printed).toBe("default\nprod\nstaging\n");
    expect(printed + ctx.stderr.text()).not.toContain("secret-9f1");
  });

  it("lists the registries of config.toml, latchkey.json and past logins, canonical and without user info", async () => {
    const home = join(root, "home-registries");
    const project = join(root, "registries-app");
    await mkdir(home, { recursive: true });
    await mkdir(project, { recursive: true });
    await writeFile(
      join(home, "config.toml"),
      '[registries."https://alice:pw-9f1@npm.example.com/team"]\ntokenEnv = "TEAM_TOKEN"\n',
    );
    await writeFile(
      join(project, "latchkey.json"),
      `${JSON.stringify({
        registries: {
          "https://npm.project.example/": { tokenEnv: "PROJECT_TOKEN" },
          // Valid URLs a shell would run something from once a completion put them on the line: never offered.
          "https://evil.example/a;touch${IFS}pwned;/": {},
          "https://evil2.example/$(touch$IFS/tmp/pwned)/": {},
          "https://evil3.example/a|b&c/": {},
        },
      })}\n`,
    );
    await writeFile(
      join(home, "registries.json"),
      `${JSON.stringify({ "//127.0.0.1:4873/": { url: "http://127.0.0.1:4873/" } })}\n`,
    );
    const ctx = context(project, home);
    expect(await runCli(["__complete", "registries"], ctx), ctx.stderr.text()).toBe(0);
    expect(ctx.stdout.text()).toBe(
      "http://127.0.0.1:4873/\nhttps://npm.example.com/team/\nhttps://npm.project.example/\n",
    );
  });

  it("prints nothing on stdout when there is nothing to list from, and refuses an unknown source", async () => {
    const outside = join(root, "no-project");
    mkdirSync(outside, { recursive: true });
    const ctx = context(outside, join(root, "home-none"));
    expect(await runCli(["__complete", "envs"], ctx)).toBe(1);
    expect(ctx.stdout.text()).toBe("");
    expect(await runCli(["__complete", "secrets"], ctx)).toBe(2);
    expect(ctx.stdout.text()).toBe("");
  });
});

// ---- the scripts in real shells ----

const available = availableShells();

const sandbox = mkdtempSync(join(tmpdir(), "lk-completion-shells-"));
afterAll(() => rmSync(sandbox, { recursive: true, force: true }));
const bin = join(sandbox, "bin");
const work = join(sandbox, "work");
const calls = join(sandbox, "calls.log");
mkdirSync(bin);
mkdirSync(work);
writeFileSync(join(work, "secrets.env"), "");
// The stub stands for the installed latchkey: the scripts find it by the name the user typed.
writeFileSync(
  join(bin, "latchkey"),
  `#!/bin/sh
echo "$*" >> '${calls}'
case "$*" in
  "__complete envs") printf 'default\\nprod\\nstaging\\n' ;;
  "__complete registries") printf 'http://127.0.0.1:4873/\\nhttps://npm.example.com/team/\\n' ;;
  *) exit 1 ;;
esac
`,
);
chmodSync(join(bin, "latchkey"), 0o755);

async function script(shell: CompletionShell): Promise<string> {
  const ctx = createTestContext();
  expect(await runCli(["completion", shell], ctx)).toBe(0);
  const file = join(sandbox, `latchkey.${shell}`);
  writeFileSync(file, ctx.stdout.text());
  return file;
}

function complete(shell: CompletionShell, file: string, line: string): string[] {
  return completeLine(shell, file, line, {
    cwd: work,
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
  });
}

function readCalls(): string[] {
  try {
    const text = readFileSync(calls, "utf8");
    rmSync(calls);
    return text.split("\n").filter((l) => l !== "");
  } catch {
    return [];
  }
}

const sorted = (words: readonly string[]): string[] => [...new Set(words)].sort();
const longFlags = (path: string): string[] =>
  sorted(
    node(path)
      .flags.flatMap((f) => f.names)
      .filter((n) => n.startsWith("--")),
  );
const subcommands = (path: string): string[] => sorted(node(path).subcommands.map((s) => s.name));

/** The same expectations in every shell: [line, the words offered, the `latchkey` calls the script made]. */
const CASES: [string, () => string[], string[]][] = [
  ["latchkey ", () => subcommands(""), []],
  ["latchkey env g", () => ["get"], []],
  ["latchkey -v env ", () => subcommands("env"), []],
  ["latchkey env get --", () => longFlags("env get"), []],
  ["latchkey login --", () => longFlags("login"), []],
  ["latchkey env get --env ", () => ["default", "prod", "staging"], ["__complete envs"]],
  ["latchkey run -e st", () => ["staging"], ["__complete envs"]],
  ["latchkey env get --env=st", () => ["--env=staging"], ["__complete envs"]],
  ["latchkey env get --env staging --", () => longFlags("env get"), []],
  ["latchkey auth token --env ", () => [], []],
  [
    "latchkey token --registry https://npm.ex",
    () => ["https://npm.example.com/team/"],
    ["__complete registries"],
  ],
  [
    "latchkey token --registry=http",
    () => ["--registry=http://127.0.0.1:4873/", "--registry=https://npm.example.com/team/"],
    ["__complete registries"],
  ],
  ["latchkey setup npmrc --registry http://127", () => ["http://127.0.0.1:4873/"], ["__complete registries"]],
  ["latchkey env export --format ", () => ["dotenv", "json", "shell"], []],
  ["latchkey credential-provider --format n", () => ["npm-rfc"], []],
  ["latchkey completion ", () => ["bash", "fish", "zsh"], []],
  ["latchkey help ", () => subcommands(""), []],
  ["latchkey __c", () => [], []],
];

describe.each(available)("the %s script", (shell) => {
  it.each(CASES)("completes `%s`", async (line, expected, expectedCalls) => {
    const file = await script(shell);
    readCalls();
    expect(sorted(complete(shell, file, line))).toEqual(sorted(expected()));
    expect(readCalls()).toEqual(expectedCalls);
  });

  it("offers files for a file argument and a --flag=<file> value", async () => {
    const file = await script(shell);
    const files = shell === "zsh" ? ["<files>"] : ["secrets.env"];
    expect(complete(shell, file, "latchkey env import ")).toEqual(files);
    expect(complete(shell, file, "latchkey login --token-file=sec")).toEqual(
      files.map((f) => `--token-file=${f}`),
    );
  });

  it("hands the rest of a `run` line to the program being run", async () => {
    const file = await script(shell);
    const first = complete(shell, file, "latchkey run -e staging -- nod");
    const later = complete(shell, file, "latchkey run sometool --e");
    if (shell === "zsh") {
      expect(first).toEqual(["<line 1: nod>"]);
      expect(later).toEqual(["<line 2: sometool --e>"]);
    } else {
      // The program's name completes as a command; its arguments are its own, never latchkey's --env.
      expect(first).toContain("node");
      expect(later).not.toContain("--env");
    }
    expect(readCalls()).toEqual([]);
  });
});

it.skipIf(!available.includes("bash"))("registers the bash function for the latchkey command", async () => {
  const file = await script("bash");
  const result = spawnSync(
    "bash",
    ["--norc", "--noprofile", "-c", `source '${file}'; complete -p latchkey`],
    {
      encoding: "utf8",
    },
  );
  expect(result.stdout.trim()).toBe("complete -F _latchkey latchkey");
});
