// The per-project vault as users meet it: the built CLI in a temporary project (latchkey.json identity, vault
// blobs under LATCHKEY_HOME, env commands, `latchkey run`, envSchema), on the encrypted file store.
import { spawn } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import {
  chmod,
  lstat,
  mkdir,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CLI, collect } from "./support/cli.js";
import {
  UUID_V4,
  allFiles,
  approveVaultOnTerminal,
  expectFailure,
  expectSuccess,
  snapshot,
  tempProject,
  waitForOutput,
  type TempProject,
  type TempProjectOptions,
} from "./support/project.js";

const NODE = process.execPath;

const projects: TempProject[] = [];
afterEach(async () => {
  await Promise.all(projects.splice(0).map((p) => p.cleanup()));
});

async function project(options?: TempProjectOptions): Promise<TempProject> {
  const p = await tempProject(options);
  projects.push(p);
  return p;
}

/** A project whose vault exists, with `values` set in the default environment. */
async function seeded(values: Record<string, string>, options?: TempProjectOptions): Promise<TempProject> {
  const p = await project(options);
  expectSuccess(await p.cli(["env", "set", ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]));
  return p;
}

/** `latchkey run -- node -e script args…`. */
function runNode(script: string, ...args: string[]): string[] {
  return ["run", "--", NODE, "-e", script, ...args];
}

/** A child script printing the named variables as JSON (undefined ones left out). */
const PRINT_ENV =
  "process.stdout.write(JSON.stringify(Object.fromEntries(process.argv.slice(1).map((k) => [k, process.env[k]]))))";

/** A child script that creates the file named by its argument: proof that it was started. */
const TOUCH = "require('node:fs').writeFileSync(process.argv[1], 'started')";

async function exportJson(p: TempProject, environment = "default"): Promise<Record<string, string>> {
  const r = await p.cli(["env", "export", "--env", environment, "--format", "json"]);
  expectSuccess(r);
  return JSON.parse(r.stdout) as Record<string, string>;
}

// Every kind of vault id the design says must be rejected before it is joined into a path.
const INVALID_VAULT_IDS = [
  "",
  "/",
  "vault/sub",
  "\\",
  "vault\\sub",
  "..",
  "../escape",
  "a..b",
  "~",
  "~vault",
  "bad\u0001id",
  "bad\nid",
  "bad\u007fid",
  "C:",
  "C:vault",
  "c:\\vault",
];

describe("project identity", () => {
  it("first `env set` from a subdirectory creates latchkey.json with a UUID v4 at the project root", async () => {
    const p = await project({ marker: "git" });
    const sub = join(p.dir, "src", "deep");
    await mkdir(sub, { recursive: true });
    const set = await p.cli(["env", "set", "GREETING=hello"], { cwd: sub });
    expectSuccess(set);
    expect(set.stderr).toContain(`Created ${p.file}`);
    expect(existsSync(join(sub, "latchkey.json"))).toBe(false);
    const text = await readFile(p.file, "utf8");
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(["vault"]);
    expect(parsed.vault).toMatch(UUID_V4);
    expect(await readdir(p.vaultsDir)).toEqual([`${String(parsed.vault)}.enc`]);

    // Found again from the subdirectory and from the root; later writes leave latchkey.json alone.
    expect((await p.cli(["env", "get", "GREETING"], { cwd: sub })).stdout).toBe("hello");
    const again = await p.cli(["env", "set", "OTHER=1"], { cwd: sub });
    expectSuccess(again);
    expect(again.stderr).not.toContain("latchkey.json");
    expect((await p.cli(["env", "get", "OTHER"])).stdout).toBe("1");
    expect(await readFile(p.file, "utf8")).toBe(text);
  });

  it("another project on the same machine gets its own vault; reads never create latchkey.json", async () => {
    const p = await seeded({ SHARED_NAME: "first-project" });
    const other = join(p.root, "work", "other");
    await mkdir(other);
    await writeFile(join(other, "package.json"), "{}\n");
    for (const args of [
      ["env", "get", "SHARED_NAME"],
      ["env", "list"],
      runNode(TOUCH, join(other, "marker")),
    ]) {
      expectFailure(await p.cli(args, { cwd: other }), "LK_PROJECT_NOT_FOUND");
    }
    expect(existsSync(join(other, "latchkey.json"))).toBe(false);
    expect(existsSync(join(other, "marker"))).toBe(false);

    expectSuccess(await p.cli(["env", "set", "SHARED_NAME=second-project"], { cwd: other }));
    const otherId = (JSON.parse(await readFile(join(other, "latchkey.json"), "utf8")) as { vault: string })
      .vault;
    expect(otherId).toMatch(UUID_V4);
    expect(otherId).not.toBe(await p.vaultId());
    expect((await p.cli(["env", "get", "SHARED_NAME"], { cwd: other })).stdout).toBe("second-project");
    expect((await p.cli(["env", "get", "SHARED_NAME"])).stdout).toBe("first-project");
  });

  it("adds the vault to an existing latchkey.json keeping every other byte (and the file's mode)", async () => {
    const p = await project({ marker: "package.json" });
    const original =
      '{\n\t"name":   "my-app",\n\t"profile" : "work",\n\t"envSchema": { "PORT": { "format": "port", "default": "8080" } },\n' +
      '\t"custom": [1,2,  3],   "nested": {"a": {"b": null}}\n}';
    await writeFile(p.file, original);
    await chmod(p.file, 0o640);
    const sub = join(p.dir, "packages", "api");
    await mkdir(sub, { recursive: true });

    const set = await p.cli(["env", "set", "PORT=9090"], { cwd: sub });
    expectSuccess(set);
    expect(set.stderr).toContain(`Added this project's vault id to ${p.file}`);
    const updated = await readFile(p.file, "utf8");
    const id = await p.vaultId();
    expect(id).toMatch(UUID_V4);
    // The one change: a `"vault": "<id>",` member (spaced like its neighbours) before the first member.
    const member = new RegExp(`"vault"\\s*:\\s*"${id}",\\s*`);
    expect(updated).toMatch(member);
    expect(updated.replace(member, "")).toBe(original);
    expect(JSON.parse(updated)).toEqual({ vault: id, ...(JSON.parse(original) as object) });
    expect((await stat(p.file)).mode & 0o777).toBe(0o640);
    expect((await p.cli(["env", "get", "PORT"], { cwd: sub })).stdout).toBe("9090");

    expectSuccess(await p.cli(["env", "set", "PORT=9091"]));
    expect(await readFile(p.file, "utf8")).toBe(updated);
  });

  it("a moved and renamed project keeps its vault, once approved at its new path", async () => {
    const p = await seeded({ DATABASE_URL: "postgres://db.internal/app", TOKEN: "moved-token" });
    const id = await p.vaultId();
    const before = p.dir;
    const moved = join(p.root, "elsewhere", "renamed-app");
    await mkdir(join(p.root, "elsewhere"));
    await rename(p.dir, moved);
    p.dir = moved;
    expect(await p.vaultId()).toBe(id);
    // The vault is bound to the old path: without a terminal to ask on, the moved project is refused.
    const refused = await p.cli(["env", "export", "--format", "json"]);
    expectFailure(refused, "LK_VAULT_NOT_APPROVED");
    expect(refused.stderr).toContain(`${before} (no longer there)`);
    expect(refused.stderr).toContain(`${p.file}:2`);
    await approveVaultOnTerminal(p.env(), p.dir);
    expect(await exportJson(p)).toEqual({ DATABASE_URL: "postgres://db.internal/app", TOKEN: "moved-token" });
    expectSuccess(await p.cli(["env", "set", "AFTER_MOVE=yes"]));
    expect(await readdir(p.vaultsDir)).toEqual([`${id}.enc`]);
    expect(await p.vaultId()).toBe(id);
  });

  it("LATCHKEY_VAULT_ID overrides latchkey.json per invocation, without touching it", async () => {
    const p = await seeded({ WHERE: "project-vault" });
    const text = await readFile(p.file, "utf8");
    const override = { LATCHKEY_VAULT_ID: "ci-shared-vault" };
    expectSuccess(await p.cli(["env", "set", "WHERE=override-vault"], { env: override }));
    const [plain, overridden, run] = await Promise.all([
      p.cli(["env", "get", "WHERE"]),
      p.cli(["env", "get", "WHERE"], { env: override }),
      p.cli(runNode(PRINT_ENV, "WHERE"), { env: override }),
    ]);
    expect(plain.stdout).toBe("project-vault");
    expect(overridden.stdout).toBe("override-vault");
    expect(JSON.parse(run.stdout)).toEqual({ WHERE: "override-vault" });
    expect((await readdir(p.vaultsDir)).sort()).toEqual(
      [`${await p.vaultId()}.enc`, "ci-shared-vault.enc"].sort(),
    );
    expect(await readFile(p.file, "utf8")).toBe(text);

    // Outside any project the override alone names the vault, and nothing creates a latchkey.json.
    const nowhere = join(p.root, "scratch");
    await mkdir(nowhere);
    expect((await p.cli(["env", "get", "WHERE"], { cwd: nowhere, env: override })).stdout).toBe(
      "override-vault",
    );
    expectSuccess(await p.cli(["env", "set", "X=1"], { cwd: nowhere, env: override }));
    expect(await readdir(nowhere)).toEqual([]);
  });

  it("rejects every invalid vault id in latchkey.json, naming the file and position, and writes nothing", async () => {
    const p = await project();
    const dirs = await Promise.all(
      INVALID_VAULT_IDS.map(async (id, i) => {
        const dir = join(p.root, "ids", String(i));
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, "package.json"), "{}\n");
        await writeFile(
          join(dir, "latchkey.json"),
          `{\n  "name": "x",\n  "vault": ${JSON.stringify(id)}\n}\n`,
        );
        return dir;
      }),
    );
    const before = await snapshot(p.root);
    const results = await Promise.all(
      dirs.flatMap((dir) =>
        [["env", "set", "KEY=value"], ["env", "get", "KEY"], runNode(TOUCH, join(dir, "marker"))].map(
          async (args) => ({ dir, args, result: await p.cli(args, { cwd: dir }) }),
        ),
      ),
    );
    for (const { dir, args, result } of results) {
      expectFailure(result, "LK_PROJECT_INVALID");
      expect(result.stderr, `${args.join(" ")} in ${dir}`).toContain(`${join(dir, "latchkey.json")}:3:12`);
      expect(result.stderr).toContain("vault");
    }
    expect(await snapshot(p.root)).toEqual(before);
  });

  it("rejects every invalid LATCHKEY_VAULT_ID and writes nothing", async () => {
    const p = await seeded({ KEEP: "kept" });
    const before = await snapshot(p.root);
    const results = await Promise.all(
      INVALID_VAULT_IDS.flatMap((id) =>
        [
          ["env", "set", "KEY=value"],
          ["env", "get", "KEEP"],
          ["env", "list"],
          runNode(TOUCH, join(p.root, "marker")),
        ].map(async (args) => ({ id, result: await p.cli(args, { env: { LATCHKEY_VAULT_ID: id } }) })),
      ),
    );
    for (const { id, result } of results) {
      expectFailure(result, "LK_VAULT_ID_INVALID");
      expect(result.stderr, JSON.stringify(id)).toContain("LATCHKEY_VAULT_ID");
    }
    expect(await snapshot(p.root)).toEqual(before);
    expect((await p.cli(["env", "get", "KEEP"])).stdout).toBe("kept");
  });
});

describe("storage", () => {
  it("keeps vaults/<id>.enc at 0600 in 0700 directories, whatever the umask", async () => {
    const p = await project();
    expectSuccess(await p.cli(["env", "set", "A=1"], { umask: "000" }));
    expectSuccess(await p.cli(["env", "set", "B=2"], { umask: "000" }));
    expect((await stat(p.latchkeyHome)).mode & 0o777).toBe(0o700);
    expect((await stat(p.vaultsDir)).mode & 0o777).toBe(0o700);
    expect((await stat(await p.vaultFile())).mode & 0o777).toBe(0o600);
    expect(await readdir(p.vaultsDir)).toEqual([`${await p.vaultId()}.enc`]);
  });

  it("a canary value, set every way, appears in no file under HOME, LATCHKEY_HOME or the project", async () => {
    const canary = `lk-vault-canary-${randomUUID()}`;
    const p = await project();
    expectSuccess(await p.cli(["env", "set", `CANARY_ARGV=${canary}-argv`]));
    expectSuccess(await p.cli(["env", "set", "CANARY_STDIN"], { input: `${canary}-stdin\n` }));
    expectSuccess(await p.cli(["env", "import", "-"], { input: `CANARY_IMPORT="${canary}-import"\n` }));
    expectSuccess(await p.cli(["env", "set", "--env", "staging", `CANARY_STAGING=${canary}-staging`]));
    const uses = await Promise.all([
      p.cli(["env", "list", "--reveal"]),
      p.cli(["env", "export", "--format", "shell"]),
      p.cli(runNode(PRINT_ENV, "CANARY_STDIN")),
    ]);
    for (const r of uses) {
      expectSuccess(r);
      expect(r.stdout).toContain(canary);
    }
    const files = await allFiles(p.root);
    expect(files).toContain(await p.vaultFile());
    const needles = [canary, Buffer.from(canary).toString("base64"), Buffer.from(canary).toString("hex")];
    for (const file of files) {
      const bytes = await readFile(file);
      for (const needle of needles) expect(bytes.includes(Buffer.from(needle)), file).toBe(false);
      if (file.startsWith(p.latchkeyHome)) expect(bytes.includes(Buffer.from("CANARY_")), file).toBe(false);
    }
  });
  it("refuses a vault file that is a symbolic link, leaving the link's target untouched", async () => {
    const p = await seeded({ KEEP: "kept" });
    const vault = await p.vaultFile();
    const target = join(p.root, "elsewhere.enc");
    await rename(vault, target);
    await symlink(target, vault);
    const bytes = await readFile(target);
    for (const args of [
      ["env", "get", "KEEP"],
      ["env", "set", "NEW=1"],
    ]) {
      expectFailure(await p.cli(args), "LK_FILE_SYMLINK");
    }
    expect((await lstat(vault)).isSymbolicLink()).toBe(true);
    expect(await readFile(target)).toEqual(bytes);
  });
});

describe("env commands", () => {
  it("set KEY=VALUE (several at once) and KEY from stdin; get prints exactly the value", async () => {
    const p = await project();
    const values: Record<string, string> = {
      URL: "postgres://user:p%40ss@db:5432/app?sslmode=require&x=1",
      SPACED: "  two  words  ",
      UNICODE: "päss wörd ✓ 🔑",
      QUOTES: `it's "quoted" $HOME \\n`,
      EMPTY: "",
    };
    expectSuccess(await p.cli(["env", "set", ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]));
    const stdin = await p.cli(["env", "set", "FROM_STDIN"], { input: "line one\nline two\n" });
    expectSuccess(stdin);
    expect(stdin.stdout).toBe("");
    expect(stdin.stderr).not.toContain("line one");
    values.FROM_STDIN = "line one\nline two";
    expectSuccess(await p.cli(["env", "set", "SPACED=overwritten"]));
    values.SPACED = "overwritten";

    const gets = await Promise.all(Object.keys(values).map((k) => p.cli(["env", "get", k])));
    Object.values(values).forEach((value, i) => {
      expectSuccess(gets[i]!);
      expect(gets[i]!.stdout).toBe(value);
      expect(gets[i]!.stderr).toBe("");
    });
    expect(await exportJson(p)).toEqual(values);

    const [empty, mixed, missing] = await Promise.all([
      p.cli(["env", "set", "NOTHING"], { input: "" }),
      p.cli(["env", "set", "A=1", "B"], { input: "b\n" }),
      p.cli(["env", "get", "NOT_SET"]),
    ]);
    expectFailure(empty, "LK_INPUT_EMPTY");
    expectFailure(mixed, "LK_USAGE");
    expectFailure(missing, "LK_ENV_KEY_NOT_FOUND");
    expect(await exportJson(p)).toEqual(values);

    const help = await p.cli(["env", "set", "--help"]);
    expect(help.stdout).toContain("`ps`");
  });

  it("list shows names; --show values with schema-secret keys masked; --reveal everything; --json", async () => {
    const p = await project();
    await writeFile(p.file, JSON.stringify({ envSchema: { API_TOKEN: { secret: true } } }, null, 2));
    expectSuccess(await p.cli(["env", "set", "API_TOKEN=tok-very-secret-value", "PLAIN=plain-value"]));
    const [names, show, reveal, json, jsonShow, jsonReveal] = await Promise.all([
      p.cli(["env", "list"]),
      p.cli(["env", "list", "--show"]),
      p.cli(["env", "list", "--reveal"]),
      p.cli(["env", "list", "--json"]),
      p.cli(["env", "list", "--json", "--show"]),
      p.cli(["env", "list", "--json", "--reveal"]),
    ]);
    expect(names.stdout).toBe("API_TOKEN\nPLAIN\n");
    expect(show.stdout).toBe("API_TOKEN=*****\nPLAIN=plain-value\n");
    expect(reveal.stdout).toBe("API_TOKEN=tok-very-secret-value\nPLAIN=plain-value\n");
    expect(JSON.parse(json.stdout)).toEqual({
      environment: "default",
      keys: [
        { key: "API_TOKEN", secret: true },
        { key: "PLAIN", secret: false },
      ],
    });
    expect(JSON.parse(jsonShow.stdout).keys).toEqual([
      { key: "API_TOKEN", secret: true, value: "*****" },
      { key: "PLAIN", secret: false, value: "plain-value" },
    ]);
    expect(JSON.parse(jsonReveal.stdout).keys).toEqual([
      { key: "API_TOKEN", secret: true, value: "tok-very-secret-value" },
      { key: "PLAIN", secret: false, value: "plain-value" },
    ]);
    for (const r of [names, show, json, jsonShow]) {
      expect(r.stdout + r.stderr).not.toContain("tok-very-secret-value");
    }
    for (const r of [names, json]) expect(r.stdout).not.toContain("plain-value");
  });

  it("unset removes keys; an absent key is LK_ENV_KEY_NOT_FOUND", async () => {
    const p = await seeded({ A: "1", B: "2", C: "3" });
    expectSuccess(await p.cli(["env", "unset", "A", "B"]));
    expect(await exportJson(p)).toEqual({ C: "3" });
    expectFailure(await p.cli(["env", "unset", "NOT_THERE"]), "LK_ENV_KEY_NOT_FOUND");
    expectFailure(await p.cli(["env", "get", "A"]), "LK_ENV_KEY_NOT_FOUND");
    expect(await exportJson(p)).toEqual({ C: "3" });
  });

  it("environments are isolated (--env, -e, --env=); envs lists them, also as JSON", async () => {
    const p = await seeded({ DB: "default-db", ONLY_DEFAULT: "d" });
    expectSuccess(await p.cli(["env", "set", "--env", "staging", "DB=staging-db"]));
    const [staging, short, equals, plain, leak, list, envs, envsJson, run] = await Promise.all([
      p.cli(["env", "get", "--env", "staging", "DB"]),
      p.cli(["env", "get", "-e", "staging", "DB"]),
      p.cli(["env", "get", "--env=staging", "DB"]),
      p.cli(["env", "get", "DB"]),
      p.cli(["env", "get", "--env", "staging", "ONLY_DEFAULT"]),
      p.cli(["env", "list", "--env", "staging"]),
      p.cli(["env", "envs"]),
      p.cli(["env", "envs", "--json"]),
      p.cli(["run", "--env", "staging", "--", NODE, "-e", PRINT_ENV, "DB", "ONLY_DEFAULT"]),
    ]);
    for (const r of [staging, short, equals]) expect(r.stdout).toBe("staging-db");
    expect(plain.stdout).toBe("default-db");
    expectFailure(leak, "LK_ENV_KEY_NOT_FOUND");
    expect(list.stdout).toBe("DB\n");
    expect(envs.stdout).toBe("default (2 secrets)\nstaging (1 secret)\n");
    expect(JSON.parse(envsJson.stdout)).toEqual({
      environments: [
        { name: "default", keys: 2 },
        { name: "staging", keys: 1 },
      ],
    });
    expect(JSON.parse(run.stdout)).toEqual({ DB: "staging-db" });
    expectSuccess(await p.cli(["env", "unset", "-e", "staging", "DB"]));
    expect(await exportJson(p)).toEqual({ DB: "default-db", ONLY_DEFAULT: "d" });
    expect(await exportJson(p, "staging")).toEqual({});
  });

  describe("import and export", () => {
    const DOTENV =
      [
        "# exported by hand from the old secrets manager",
        "   # an indented comment",
        "",
        "export EXPORTED=exported-value",
        "PLAIN=plain value with spaces   # a trailing comment",
        "HASH=abc#def",
        "COLOR=#fff",
        "SPACED_EQ = spaced",
        String.raw`SINGLE='single $HOME \n stays literal'`,
        String.raw`DOUBLE="double \"quoted\" tab\there \\ backslash \$HOME"`,
        String.raw`NEWLINES="line one\nline two"`,
        'MULTILINE="first line',
        "second line",
        '  indented third"',
        "MULTI_SINGLE='one",
        "two'",
        String.raw`CR="carriage\rreturn"`,
        "BACKTICK=`back 'tick' \"quoted\"`",
        "EMPTY=",
        'EMPTY_QUOTED=""',
        'UNICODE="päss ✓ 🔑"',
        String.raw`WINDOWS_PATH="C:\dir\file"`,
        "DUPLICATE=first",
        "DUPLICATE=second",
      ].join("\n") + "\nCRLF_LINE=crlf value\r\nLAST=no trailing newline";
    const IMPORTED: Record<string, string> = {
      EXPORTED: "exported-value",
      PLAIN: "plain value with spaces",
      HASH: "abc#def",
      COLOR: "#fff",
      SPACED_EQ: "spaced",
      SINGLE: String.raw`single $HOME \n stays literal`,
      DOUBLE: 'double "quoted" tab\there \\ backslash $HOME',
      NEWLINES: "line one\nline two",
      MULTILINE: "first line\nsecond line\n  indented third",
      MULTI_SINGLE: "one\ntwo",
      CR: "carriage\rreturn",
      BACKTICK: `back 'tick' "quoted"`,
      EMPTY: "",
      EMPTY_QUOTED: "",
      UNICODE: "päss ✓ 🔑",
      WINDOWS_PATH: String.raw`C:\dir\file`,
      DUPLICATE: "second",
      CRLF_LINE: "crlf value",
      LAST: "no trailing newline",
    };
    const KEYS = Object.keys(IMPORTED);

    it("imports comments, export prefixes, quotes, escapes and multi-line values exactly", async () => {
      const p = await project();
      await writeFile(join(p.dir, ".env"), DOTENV);
      const r = await p.cli(["env", "import", ".env"]);
      expectSuccess(r);
      expect(r.stderr).toContain(`Imported ${KEYS.length} secrets into default`);
      expect(await exportJson(p)).toEqual(IMPORTED);
      const run = await p.cli(runNode(PRINT_ENV, ...KEYS));
      expectSuccess(run);
      expect(JSON.parse(run.stdout)).toEqual(IMPORTED);
    });

    it("export --format dotenv|json|shell round-trips", async () => {
      const p = await project();
      expectSuccess(await p.cli(["env", "import", "-"], { input: DOTENV }));
      const [dotenv, json, shell] = await Promise.all([
        p.cli(["env", "export", "--format", "dotenv"]),
        p.cli(["env", "export", "--format", "json"]),
        p.cli(["env", "export", "--format", "shell"]),
      ]);
      for (const r of [dotenv, json, shell]) expectSuccess(r);
      expect(JSON.parse(json.stdout)).toEqual(IMPORTED);

      // dotenv: re-imported into another environment, it exports the very same JSON.
      await writeFile(join(p.dir, "exported.env"), dotenv.stdout);
      expectSuccess(await p.cli(["env", "import", "--env", "copy", "exported.env"]));
      const copied = await p.cli(["env", "export", "--env", "copy", "--format", "json"]);
      expect(copied.stdout).toBe(json.stdout);
      // The default format is dotenv.
      expect((await p.cli(["env", "export"])).stdout).toBe(dotenv.stdout);

      // shell: sourced by sh, the exports give the program exactly the values.
      const script = join(p.dir, "exported.sh");
      await writeFile(script, shell.stdout);
      const sourced = await collect(
        spawn(
          "sh",
          [
            "-c",
            '. "$1" && node="$2" && script="$3" && shift 3 && exec "$node" -e "$script" "$@"',
            "sh",
          ].concat([script, NODE, PRINT_ENV, ...KEYS]),
          { env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "pipe"] },
        ),
      );
      expect(sourced.code, sourced.stderr).toBe(0);
      expect(JSON.parse(sourced.stdout)).toEqual(IMPORTED);
    });

    it("a malformed dotenv file is refused with its line and column, and nothing is imported", async () => {
      const p = await seeded({ KEEP: "kept" });
      await writeFile(join(p.dir, "bad.env"), "GOOD=1\nALSO_GOOD='x'\nBAD LINE here\n");
      const before = await snapshot(p.root);
      const r = await p.cli(["env", "import", "bad.env"]);
      expectFailure(r, "LK_DOTENV_INVALID");
      expect(r.stderr).toContain("line 3, column");
      const nul = await p.cli(["env", "import", "-"], { input: "GOOD=1\nNUL=a\0b\n" });
      expectFailure(nul, "LK_DOTENV_INVALID");
      expect(await snapshot(p.root)).toEqual(before);
      expect(await exportJson(p)).toEqual({ KEEP: "kept" });
    });
  });
});

describe("latchkey run", () => {
  it("gives the child the parent's environment plus the secrets (the vault wins); `env run` too", async () => {
    const p = await seeded({ SECRET_ONE: "s1-value", SHADOWED: "from-vault" });
    const env = { PARENT_ONLY: "from-parent", SHADOWED: "from-parent" };
    const keys = ["SECRET_ONE", "SHADOWED", "PARENT_ONLY", "LATCHKEY_HOME"];
    const [run, envRun] = await Promise.all([
      p.cli(runNode(PRINT_ENV, ...keys), { env }),
      p.cli(["env", ...runNode(PRINT_ENV, ...keys)], { env }),
    ]);
    for (const r of [run, envRun]) {
      expectSuccess(r);
      expect(JSON.parse(r.stdout)).toEqual({
        SECRET_ONE: "s1-value",
        SHADOWED: "from-vault",
        PARENT_ONLY: "from-parent",
        LATCHKEY_HOME: p.latchkeyHome,
      });
    }
  });

  it("passes exit codes through (0, 3, 255), and 127 for a missing program", async () => {
    const p = await seeded({ S: "v" });
    const results = await Promise.all([
      ...[0, 3, 255].map((code) => p.cli(["run", "--", "sh", "-c", `exit ${code}`])),
      p.cli(["env", "run", "--", "sh", "-c", "exit 3"]),
      p.cli(["run", "--", "no-such-program-latchkey-e2e"]),
    ]);
    expect(results.map((r) => r.code)).toEqual([0, 3, 255, 3, 127]);
    expect(results[4]!.stderr).toContain("LK_RUN_NOT_FOUND");
  });

  it("passes a termination signal through: the CLI dies of the child's signal", async () => {
    const p = await seeded({ S: "v" });
    const [term, int, envRun] = await Promise.all([
      p.cli(["run", "--", "sh", "-c", "kill -TERM $$"]),
      p.cli(["run", "--", "sh", "-c", "kill -INT $$"]),
      p.cli(["env", "run", "--", "sh", "-c", "kill -TERM $$"]),
    ]);
    expect([term.signal, term.code]).toEqual(["SIGTERM", null]);
    expect([int.signal, int.code]).toEqual(["SIGINT", null]);
    expect([envRun.signal, envRun.code]).toEqual(["SIGTERM", null]);
  });

  it("forwards SIGINT and SIGTERM sent to the CLI to the child", async () => {
    const p = await seeded({ S: "v" });
    const trap =
      "for (const [s, code] of [['SIGINT', 40], ['SIGTERM', 41]]) process.on(s, () => { console.log('child got ' + s); process.exit(code); });" +
      "console.log('ready'); setInterval(() => {}, 1000);";
    const outcomes = await Promise.all(
      (["SIGINT", "SIGTERM"] as const).map(async (signal) => {
        const cli = p.start(runNode(trap));
        const done = collect(cli);
        await waitForOutput(cli, "ready");
        cli.kill(signal);
        return { signal, result: await done };
      }),
    );
    for (const { signal, result } of outcomes) {
      expect(result.stdout).toBe(`ready\nchild got ${signal}\n`);
      expect(result.code).toBe(signal === "SIGINT" ? 40 : 41);
    }
  });

  it("stdin reaches the child, with and without --mask", async () => {
    const p = await seeded({ TYPED: "typed-secret-value" });
    const input = "line from the user\ntyped-secret-value\n";
    const [plain, masked] = await Promise.all([
      p.cli(["run", "--", "cat"], { input }),
      p.cli(["run", "--mask", "--", "cat"], { input }),
    ]);
    expect(plain.stdout).toBe(input);
    expect(masked.stdout).toBe("line from the user\n*****\n");
  });

  it("--mask masks every secret in stdout and stderr, also a value written in two halves with a delay", async () => {
    const token = "tok_9f8e7d6c5b4a3210";
    const password = "hunter2-correct-horse";
    const p = await seeded({ TOKEN: token, PASSWORD: password });
    const script = `
      const t = process.env.TOKEN, p = process.env.PASSWORD;
      process.stdout.write("token=" + t + ";\\n");
      process.stderr.write("password=" + p + ";\\n");
      process.stdout.write("split=" + t.slice(0, 7));
      setTimeout(() => {
        process.stdout.write(t.slice(7) + ";\\n");
        process.stderr.write("split=" + p.slice(0, 5));
        setTimeout(() => process.stderr.write(p.slice(5) + ";\\n"), 200);
      }, 200);`;
    const [masked, unmasked] = await Promise.all([
      p.cli(["run", "--mask", "--", NODE, "-e", script]),
      p.cli(runNode(script)),
    ]);
    expectSuccess(masked);
    expect(masked.stdout).toBe("token=*****;\nsplit=*****;\n");
    expect(masked.stderr).toBe("password=*****;\nsplit=*****;\n");
    expect(unmasked.stdout).toBe(`token=${token};\nsplit=${token};\n`);
    expect(unmasked.stderr).toBe(`password=${password};\nsplit=${password};\n`);
  });

  it("never puts a secret in the argv of the CLI or the child", async () => {
    const secret = `argv-canary-${randomUUID()}`;
    const p = await project();
    expectSuccess(await p.cli(["env", "set", "ARGV_CANARY"], { input: secret }));
    const cli = p.start(runNode("console.log('pid ' + process.pid); setInterval(() => {}, 1000);"));
    const done = collect(cli);
    const childPid = /pid (\d+)/.exec(await waitForOutput(cli, "\n"))?.[1];
    expect(childPid).toBeDefined();
    // Without --mask, `run` becomes the program (execve): the CLI's pid is the program's, and its argv the
    // program's; the CLI's own argv is the one this test passed, which holds no secret.
    expect(childPid).toBe(String(cli.pid));
    const childArgv = await readFile(`/proc/${childPid}/cmdline`, "utf8");
    const childEnv = await readFile(`/proc/${childPid}/environ`, "utf8");
    cli.kill("SIGTERM");
    const result = await done;
    expect(result.stdout).toBe(`pid ${childPid}\n`);
    expect(result.signal).toBe("SIGTERM");
    expect(childArgv).toContain("setInterval");
    expect(childArgv).not.toContain(secret);
    // The secret did reach the child, through its environment.
    expect(childEnv.split("\0")).toContain(`ARGV_CANARY=${secret}`);
  });

  it("with --mask runs the program as a child and keeps the secret out of both argvs", async () => {
    const secret = `mask-argv-canary-${randomUUID()}`;
    const p = await project();
    expectSuccess(await p.cli(["env", "set", "ARGV_CANARY"], { input: secret }));
    const cli = p.start([
      "run",
      "--mask",
      "--",
      ...runNode("console.log('pid ' + process.pid); setInterval(() => {}, 1000);").slice(2),
    ]);
    const done = collect(cli);
    const childPid = /pid (\d+)/.exec(await waitForOutput(cli, "\n"))?.[1];
    expect(childPid).toBeDefined();
    expect(childPid).not.toBe(String(cli.pid));
    const cliArgv = await readFile(`/proc/${cli.pid}/cmdline`, "utf8");
    const childArgv = await readFile(`/proc/${childPid}/cmdline`, "utf8");
    cli.kill("SIGTERM");
    const result = await done;
    expect(result.signal).toBe("SIGTERM");
    expect(cliArgv).toContain("run");
    expect(childArgv).toContain("setInterval");
    expect(cliArgv).not.toContain(secret);
    expect(childArgv).not.toContain(secret);
  });

  it.runIf(process.platform === "linux")(
    "gives the program default signal dispositions (SIGPIPE is not left ignored)",
    async () => {
      const p = await project();
      expectSuccess(await p.cli(["env", "set", "K"], { input: "v" }));
      for (const args of [["run"], ["run", "--mask"]]) {
        const result = await p.cli([...args, "--", "sh", "-c", "grep SigIgn /proc/self/status"]);
        expectSuccess(result);
        expect(result.stdout, args.join(" ")).toMatch(/^SigIgn:\s+0+\n$/);
      }
    },
  );
});

describe("secrets too large for an environment", () => {
  const linux = process.platform === "linux";
  // What Linux passes per variable (MAX_ARG_STRLEN): NAME=VALUE and its NUL.
  const LIMIT = 131_072;
  /** 200,000 random bytes in base64: 266,668 characters, the size of the report. */
  const bigValue = () => randomBytes(200_000).toString("base64");
  const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
  /** A child script printing, as JSON, what it got: the variables named, and for each *_FILE its file. */
  const INSPECT =
    "const fs = require('node:fs'), path = require('node:path'), { createHash } = require('node:crypto');" +
    "const out = {};" +
    "for (const name of process.argv.slice(1)) {" +
    "  const v = process.env[name];" +
    "  if (v === undefined) { out[name] = null; continue; }" +
    "  if (!name.endsWith('_FILE')) { out[name] = v.length; continue; }" +
    "  out[name] = { path: v, sha256: createHash('sha256').update(fs.readFileSync(v)).digest('hex')," +
    "    mode: fs.statSync(v).mode & 0o777, dirMode: fs.statSync(path.dirname(v)).mode & 0o777 };" +
    "}" +
    "process.stdout.write(JSON.stringify(out));";

  /** A project whose TMPDIR is its own, so leftovers are easy to see. */
  async function withTemp(values: Record<string, string> = {}) {
    const p = await project();
    const tmp = join(p.root, "tmp");
    await mkdir(tmp);
    for (const [key, value] of Object.entries(values))
      expectSuccess(await p.cli(["env", "set", key], { input: value }));
    return { p, tmp, env: { TMPDIR: tmp } };
  }

  it.runIf(linux)(
    "`env set` warns, and `run` refuses with LK_RUN_ENV_TOO_LARGE naming the key, its size and the limit (with and without --mask), never aborting",
    async () => {
      const p = await project();
      const value = bigValue();
      const set = await p.cli(["env", "set", "BIG"], { input: value });
      expectSuccess(set);
      expect(set.stderr).toContain(
        `warning: BIG takes 266,673 bytes as an environment variable, over the 131,072`,
      );
      expect(set.stderr).toContain("latchkey run --file BIG");
      for (const args of [["run"], ["run", "--mask"], ["env", "run"]]) {
        const r = await p.cli([...args, "--", "sh", "-c", "echo ${#BIG}"]);
        expectFailure(r, "LK_RUN_ENV_TOO_LARGE");
        expect([r.code, r.signal], args.join(" ")).toEqual([126, null]);
        expect(r.stderr).toContain(
          `Not starting "sh": BIG takes 266,673 bytes as an environment variable, and this system passes at most ${LIMIT.toLocaleString("en-US")} bytes per variable`,
        );
        expect(r.stderr).toContain("hint: Give it to the program as a file: `latchkey run --file BIG -- …`");
        expect(r.stderr).not.toContain(value.slice(0, 32));
      }
      // One byte under the limit still starts, through execve and through spawn.
      expectSuccess(await p.cli(["env", "set", "BIG"], { input: "x".repeat(LIMIT - "BIG".length - 2) }));
      for (const args of [["run"], ["run", "--mask"]]) {
        const r = await p.cli([...args, "--", "sh", "-c", "echo ${#BIG}"]);
        expectSuccess(r);
        expect(r.stdout).toBe(`${LIMIT - 5}\n`);
      }
    },
  );

  it.runIf(linux)(
    "refuses a whole environment over what the stack limit allows, naming the largest variables",
    async () => {
      const { p } = await withTemp({
        A1: "a".repeat(100_000),
        A2: "b".repeat(100_000),
        A3: "c".repeat(100_000),
      });
      // A quarter of a 1 MiB stack is 256 KiB: less than the three together.
      const limited = (args: readonly string[]) =>
        collect(
          spawn("sh", ["-c", 'ulimit -s 1024 && exec "$0" "$@"', NODE, CLI, ...args], {
            env: p.env(),
            cwd: p.dir,
            stdio: ["ignore", "pipe", "pipe"],
          }),
        );
      for (const args of [["run"], ["run", "--mask"]]) {
        const r = await limited([...args, "--", "sh", "-c", "echo started"]);
        expectFailure(r, "LK_RUN_ENV_TOO_LARGE");
        expect([r.code, r.signal]).toEqual([126, null]);
        expect(r.stderr).toMatch(
          /its environment and arguments take 30\d,\d\d\d bytes, and this system passes at most 2\d\d,\d\d\d\./,
        );
        expect(r.stderr).toMatch(
          /The largest variables: A\d \(100,004 bytes\), A\d \(100,004 bytes\), A\d \(100,004 bytes\)\./,
        );
      }
      // Two of them as files, and the program starts under the same limit.
      const files = await limited(["run", "--file", "A1", "--file", "A2", "--", "sh", "-c", "echo ${#A3}"]);
      expectSuccess(files);
      expect(files.stdout).toBe("100000\n");
    },
  );

  it("--file KEY: the program reads KEY from a 0600 file in a 0700 directory named by KEY_FILE, removed when it ends", async () => {
    const value = bigValue();
    const { p, tmp, env } = await withTemp({ BIG: value, SMALL: "small-value" });
    const r = await p.cli(["run", "--file", "BIG", "--", NODE, "-e", INSPECT, "BIG", "BIG_FILE", "SMALL"], {
      env,
    });
    expectSuccess(r);
    const seen = JSON.parse(r.stdout) as { BIG: null; SMALL: number; BIG_FILE: Record<string, unknown> };
    expect(seen).toEqual({
      BIG: null,
      SMALL: "small-value".length,
      BIG_FILE: { path: expect.stringMatching(/\/BIG$/), sha256: sha256(value), mode: 0o600, dirMode: 0o700 },
    });
    expect(String(seen.BIG_FILE.path).startsWith(`${tmp}/latchkey-run-`)).toBe(true);
    expect(await readdir(tmp)).toEqual([]);
    // An unknown key names the environment, and nothing is started or written.
    const missing = await p.cli(["run", "--file", "NOPE", "--", "sh", "-c", "echo started"], { env });
    expectFailure(missing, "LK_ENV_KEY_NOT_FOUND");
    expect(await readdir(tmp)).toEqual([]);
  });

  it("--mount NAME: every secret in one file (JSON or dotenv) named by LATCHKEY_SECRETS_FILE, none in the environment", async () => {
    const value = bigValue();
    const { p, tmp, env } = await withTemp({ BIG: value, SMALL: "small-value" });
    const read =
      "const fs = require('node:fs'); const f = process.env.LATCHKEY_SECRETS_FILE;" +
      "process.stdout.write(JSON.stringify({ inEnv: ['BIG', 'SMALL'].filter((k) => k in process.env), mode: fs.statSync(f).mode & 0o777, text: fs.readFileSync(f, 'utf8'), path: f }));";
    const json = await p.cli(["run", "--mount", "secrets.json", "--", NODE, "-e", read], { env });
    expectSuccess(json);
    const seen = JSON.parse(json.stdout) as { inEnv: string[]; mode: number; text: string; path: string };
    expect(seen.inEnv).toEqual([]);
    expect(seen.mode).toBe(0o600);
    expect(seen.path).toMatch(/\/secrets\.json$/);
    expect(JSON.parse(seen.text)).toEqual({ BIG: value, SMALL: "small-value" });
    const dotenv = await p.cli(["run", "--mount", "app.env", "--", NODE, "-e", read], { env });
    expectSuccess(dotenv);
    expect((JSON.parse(dotenv.stdout) as { text: string }).text).toBe(`BIG=${value}\nSMALL=small-value\n`);
    expect(await readdir(tmp)).toEqual([]);
    expectFailure(await p.cli(["run", "--mount", "../escape", "--", "true"], { env }), "LK_USAGE");
  });

  it("removes the files when the CLI is interrupted; after a SIGKILL, the next run with files removes them", async () => {
    const { p, tmp, env } = await withTemp({ K: "file-secret" });
    const wait =
      "process.on('SIGINT', () => process.exit(40)); process.on('SIGTERM', () => process.exit(41));" +
      "console.log(JSON.stringify({ file: process.env.K_FILE, pid: process.pid })); setInterval(() => {}, 1000);";
    for (const [signal, code] of [
      ["SIGINT", 40],
      ["SIGTERM", 41],
    ] as const) {
      const cli = p.start(["run", "--file", "K", "--", NODE, "-e", wait], { env });
      const done = collect(cli);
      const { file } = JSON.parse(await waitForOutput(cli, "}\n")) as { file: string };
      expect(existsSync(file)).toBe(true);
      cli.kill(signal);
      expect((await done).code).toBe(code);
      expect(await readdir(tmp)).toEqual([]);
    }
    const cli = p.start(["run", "--file", "K", "--", NODE, "-e", wait], { env });
    const done = collect(cli);
    const { file, pid } = JSON.parse(await waitForOutput(cli, "}\n")) as { file: string; pid: number };
    cli.kill("SIGKILL");
    // The program holds the CLI's output pipes: it must end before the CLI's streams close.
    process.kill(pid, "SIGKILL");
    expect((await done).signal).toBe("SIGKILL");
    expect(existsSync(file)).toBe(true);
    expectSuccess(await p.cli(["run", "--file", "K", "--", "true"], { env }));
    expect(await readdir(tmp)).toEqual([]);
  });

  it("caps a value at 1 MiB and an environment at 2 MiB: refused with LK_VAULT_TOO_LARGE, nothing stored", async () => {
    const p = await seeded({ KEEP: "kept" });
    const before = await readFile(await p.vaultFile());
    const tooBig = await p.cli(["env", "set", "HUGE"], { input: "v".repeat(1024 * 1024 + 1) });
    expectFailure(tooBig, "LK_VAULT_TOO_LARGE");
    expect(tooBig.stderr).toContain(
      "HUGE in default is 1,048,577 bytes; a secret may be at most 1 MiB (1,048,576 bytes). Nothing was stored.",
    );
    const lines = ["A", "B", "C"].map((k) => `${k}=${"x".repeat(900_000)}`).join("\n");
    const imported = await p.cli(["env", "import", "-"], { input: `${lines}\n` });
    expectFailure(imported, "LK_VAULT_TOO_LARGE");
    expect(imported.stderr).toContain("The environment default would hold 2,700,011 bytes");
    expect(await readFile(await p.vaultFile())).toEqual(before);
  });
});

describe("names that would break the program, or differ only in case", () => {
  it("a reserved name needs --allow-override (set and import); `env check` lists such secrets", async () => {
    const p = await seeded({ APP: "x" });
    for (const name of ["PATH", "HOME", "LD_PRELOAD", "NODE_OPTIONS", "LATCHKEY_HOME"]) {
      const r = await p.cli(["env", "set", `${name}=/tmp/evil`]);
      expectFailure(r, "LK_ENV_KEY_RESERVED");
      expect(r.stderr).toContain(`${name} is reserved`);
      expect(r.stderr).toContain("--allow-override");
    }
    // Refused before the prompt or stdin is read.
    expectFailure(await p.cli(["env", "set", "PATH"], { input: "/tmp/evil" }), "LK_ENV_KEY_RESERVED");
    expectFailure(
      await p.cli(["env", "import", "-"], { input: "NODE_OPTIONS=--require=/tmp/x\n" }),
      "LK_ENV_KEY_RESERVED",
    );
    expect((await p.cli(["env", "list"])).stdout).toBe("APP\n");

    const clean = await p.cli(["env", "check", "--json"]);
    expect(JSON.parse(clean.stdout)).toMatchObject({ ok: true, overrides: [] });
    expectSuccess(await p.cli(["env", "set", "--allow-override", "LD_PRELOAD=/opt/lib.so"]));
    expectSuccess(
      await p.cli(["env", "import", "--allow-override", "-"], {
        input: "NODE_OPTIONS=--max-old-space-size=64\n",
      }),
    );
    const check = await p.cli(["env", "check"]);
    expectSuccess(check);
    expect(check.stdout).toContain(
      "! LD_PRELOAD replaces the LD_PRELOAD of every program `latchkey run` starts.",
    );
    expect(check.stdout).toContain(
      "! NODE_OPTIONS replaces the NODE_OPTIONS of every program `latchkey run` starts.",
    );
    expect(JSON.parse((await p.cli(["env", "check", "--json"])).stdout)).toMatchObject({
      ok: true,
      overrides: ["LD_PRELOAD", "NODE_OPTIONS"],
    });
  });

  it("`run` will not start a program the vault gives a reserved name, on the fast path or the full CLI, unless --allow-override", async () => {
    // Set past the check here; a vault pulled from another machine or member arrives with them the same way.
    const p = await seeded({ APP: "x" });
    const options = "--max-old-space-size=37";
    expectSuccess(await p.cli(["env", "set", "--allow-override", `NODE_OPTIONS=${options}`]));
    const marker = join(p.dir, "started");
    for (const argv of [
      ["run", "--", NODE, "-e", TOUCH, marker], // the fast path, replacing itself with the program
      ["env", "run", "--mask", NODE, "-e", TOUCH, marker], // the fast path, the program as a masked child
      ["-v", "run", "--", NODE, "-e", TOUCH, marker], // the full CLI: the fast path leaves -v to it
    ]) {
      const r = await p.cli(argv);
      expectFailure(r, "LK_ENV_KEY_RESERVED");
      expect(r.stderr).toContain("NODE_OPTIONS");
      expect(r.stderr).toContain("--allow-override");
      expect(r.stderr).not.toContain(options);
      expect(existsSync(marker), argv.join(" ")).toBe(false);
    }
    for (const argv of [
      ["run", "--allow-override", "--", NODE, "-e", PRINT_ENV, "NODE_OPTIONS"],
      ["-v", "run", "--allow-override", "--", NODE, "-e", PRINT_ENV, "NODE_OPTIONS"],
    ]) {
      const r = await p.cli(argv);
      expectSuccess(r);
      expect(JSON.parse(r.stdout), argv.join(" ")).toEqual({ NODE_OPTIONS: options });
    }
  });

  it("`env export --format shell` will not print a reserved name from the vault for a shell to eval, unless --allow-override", async () => {
    const p = await seeded({ APP: "x" });
    expectSuccess(await p.cli(["env", "set", "--allow-override", "LD_PRELOAD=/tmp/evil-canary.so"]));
    const refused = await p.cli(["env", "export", "--format", "shell"]);
    expectFailure(refused, "LK_ENV_KEY_RESERVED");
    expect(refused.stderr).toContain("LD_PRELOAD");
    expect(refused.stderr).not.toContain("evil-canary");
    // Data formats are for programs to read, not to evaluate: they list every secret.
    expect(JSON.parse((await p.cli(["env", "export", "--format", "json"])).stdout)).toEqual({
      APP: "x",
      LD_PRELOAD: "/tmp/evil-canary.so",
    });
    const allowed = await p.cli(["env", "export", "--format", "shell", "--allow-override"]);
    expectSuccess(allowed);
    expect(allowed.stdout).toContain("export LD_PRELOAD=");
  });

  it("an environment or key in the wrong case gets a did-you-mean", async () => {
    const p = await project();
    expectSuccess(await p.cli(["env", "set", "--env", "staging", "DATABASE_URL=postgres://db"]));
    const env = await p.cli(["env", "get", "--env", "Staging", "DATABASE_URL"]);
    expectFailure(env, "LK_ENV_NOT_FOUND");
    expect(env.stderr).toContain("The vault has no environment named Staging. Did you mean staging?");
    expect(env.stderr).toContain("use --env staging");
    const run = await p.cli(["run", "--env", "STAGING", "--", "true"]);
    expect(run.stderr).toContain("Did you mean staging?");
    const key = await p.cli(["env", "get", "--env", "staging", "database_url"]);
    expectFailure(key, "LK_ENV_KEY_NOT_FOUND");
    expect(key.stderr).toContain(
      "database_url is not set in staging. Did you mean DATABASE_URL (not database_url)?",
    );
    const unset = await p.cli(["env", "unset", "--env", "staging", "Database_Url"]);
    expect(unset.stderr).toContain("Did you mean DATABASE_URL (not Database_Url)?");
  });

  it("`env get` and `token` print exactly the value on a pipe: no newline added, a stored one kept", async () => {
    const p = await project();
    expectSuccess(await p.cli(["env", "set", "PEM"], { input: "line one\nline two\n\n" }));
    expectSuccess(await p.cli(["env", "set", "PLAIN=plain"]));
    expect((await p.cli(["env", "get", "PEM"])).stdout).toBe("line one\nline two\n");
    expect((await p.cli(["env", "get", "PLAIN"])).stdout).toBe("plain");
    expect((await p.cli(["token", "--npm"], { env: { NPM_TOKEN: "npm_token_value" } })).stdout).toBe(
      "npm_token_value",
    );
  });
});

// A pseudo-terminal from util-linux `script`: what a person at a terminal gives the CLI.
const hasScript = (process.env.PATH ?? "")
  .split(":")
  .some((dir) => dir !== "" && existsSync(join(dir, "script")));
if (!hasScript && process.env.CI !== "true")
  console.warn("skipping the terminal vault tests: no `script` (util-linux)");

describe.skipIf(!hasScript && process.env.CI !== "true")("on a terminal", () => {
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  /** Starts the CLI on a pseudo-terminal (stdin, stdout and stderr all the terminal). */
  const onTerminal = (p: TempProject, args: readonly string[], extra: Record<string, string> = {}) =>
    spawn(
      "script",
      ["-qfec", `stty cols 100 rows 30; exec ${[NODE, CLI, ...args].map(quote).join(" ")}`, "/dev/null"],
      {
        env: p.env(extra),
        cwd: p.dir,
        stdio: ["pipe", "pipe", "pipe"],
      },
    );

  it("`env set KEY` asks with a masked prompt: the typed value is stored, never echoed", async () => {
    const p = await project();
    const typed = `typed-${randomUUID()}`;
    const cli = onTerminal(p, ["env", "set", "TYPED"]);
    const done = collect(cli);
    await waitForOutput(cli, "Value for TYPED");
    cli.stdin.write(`${typed}\r`);
    await waitForOutput(cli, "Set TYPED in default.");
    cli.stdin.end();
    const result = await done;
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).not.toContain(typed);
    expect((await p.cli(["env", "get", "TYPED"])).stdout).toBe(typed);
  });

  it("`run` leaves the terminal to the child: stdin, stdout and stderr are a TTY (stdin also with --mask)", async () => {
    const p = await seeded({ S: "terminal-secret" });
    const check =
      "test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty; test -t 2 && echo stderr-tty; echo $S";
    const plain = await collect(onTerminal(p, ["run", "--", "sh", "-c", check]));
    expect(plain.code, plain.stdout).toBe(0);
    expect(plain.stdout.replaceAll("\r", "")).toBe("stdin-tty\nstdout-tty\nstderr-tty\nterminal-secret\n");
    const masked = await collect(onTerminal(p, ["run", "--mask", "--", "sh", "-c", check]));
    expect(masked.code, masked.stdout).toBe(0);
    expect(masked.stdout.replaceAll("\r", "")).toBe("stdin-tty\n*****\n");
  });

  it("Enter at the prompt for an existing key replaces nothing unless confirmed; a replacement says so", async () => {
    const p = await seeded({ API_KEY: "original-value" });
    const cli = onTerminal(p, ["env", "set", "API_KEY"]);
    const done = collect(cli);
    await waitForOutput(cli, "Value for API_KEY (replaces its current value in default)");
    cli.stdin.write("\r");
    await waitForOutput(cli, "Replace API_KEY's current value with an empty one?");
    // The question defaults to no: Enter again keeps the value.
    cli.stdin.write("\r");
    const declined = await done;
    expect(declined.code, declined.stdout).toBe(2);
    expect(declined.stdout).toContain("LK_INPUT_EMPTY");
    expect((await p.cli(["env", "get", "API_KEY"])).stdout).toBe("original-value");

    const typed = onTerminal(p, ["env", "set", "API_KEY"]);
    const typedDone = collect(typed);
    await waitForOutput(typed, "(replaces its current value in default)");
    typed.stdin.write("new-value\r");
    await waitForOutput(typed, "Replaced the value of API_KEY in default.");
    expect((await typedDone).code).toBe(0);
    expect((await p.cli(["env", "get", "API_KEY"])).stdout).toBe("new-value");

    // --allow-empty stores an empty answer without asking.
    const allowed = onTerminal(p, ["env", "set", "--allow-empty", "API_KEY"]);
    const allowedDone = collect(allowed);
    await waitForOutput(allowed, "(replaces its current value in default)");
    allowed.stdin.write("\r");
    expect((await allowedDone).code).toBe(0);
    expect((await p.cli(["env", "list", "--show"])).stdout).toBe("API_KEY=\n");
  });

  it("`env get` and `token` end the value with a newline on a terminal", async () => {
    const p = await seeded({ PLAIN: "plain" });
    const get = await collect(onTerminal(p, ["env", "get", "PLAIN"]));
    expect(get.stdout.replaceAll("\r", "")).toBe("plain\n");
    const token = await collect(onTerminal(p, ["token", "--npm"], { NPM_TOKEN: "npm_token_value" }));
    expect(token.stdout.replaceAll("\r", "")).toBe("npm_token_value\n");
  });
});

describe("envSchema", () => {
  const SCHEMA = {
    DATABASE_URL: { required: true, format: "url", secret: true },
    ADMIN_EMAIL: { format: "email" },
    WORKERS: { format: "int" },
    PORT: { format: "port", default: "8080" },
    DEBUG: { format: "bool" },
    FEATURES: { format: "json" },
    TENANT_ID: { format: "uuid" },
    SIGNING_KEY: { format: "base64" },
    API_HOST: { format: "hostname" },
    REGION: { pattern: "^(eu|us)-[a-z]+-[0-9]$" },
    API_TOKEN: { required: true },
    LOG_LEVEL: { default: "info", pattern: "^(debug|info|warn)$" },
  };
  const GOOD: Record<string, string> = {
    DATABASE_URL: "postgres://db.internal:5432/app",
    ADMIN_EMAIL: "ops@example.com",
    WORKERS: "4",
    PORT: "5432",
    DEBUG: "false",
    FEATURES: '{"beta":true}',
    TENANT_ID: randomUUID(),
    SIGNING_KEY: Buffer.from("signing key bytes").toString("base64"),
    API_HOST: "api.example.com",
    REGION: "eu-west-1",
    API_TOKEN: "tok-good",
  };
  const BAD: Record<string, string> = {
    DATABASE_URL: "not a url",
    ADMIN_EMAIL: "not-an-email",
    WORKERS: "4.5",
    PORT: "70000",
    DEBUG: "maybe",
    FEATURES: "{not json",
    TENANT_ID: "1234-not-a-uuid",
    SIGNING_KEY: "not*base64!",
    API_HOST: "-bad-.example",
    REGION: "mars-1",
  };

  /** A project whose vault holds `values`, set before the schema was added to latchkey.json. */
  async function withSchema(values: Record<string, string>, schema: object = SCHEMA): Promise<TempProject> {
    const p = await seeded(values);
    await writeFile(p.file, `${JSON.stringify({ vault: await p.vaultId(), envSchema: schema }, null, 2)}\n`);
    return p;
  }

  it("`env check` reports every violation and exits 1; once fixed it exits 0", async () => {
    const p = await withSchema(BAD);
    const [text, json] = await Promise.all([p.cli(["env", "check"]), p.cli(["env", "check", "--json"])]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain("11 problem");
    for (const key of [...Object.keys(BAD), "API_TOKEN"]) expect(text.stdout).toContain(key);
    for (const value of [
      "not a url",
      "not-an-email",
      "{not json",
      "1234-not-a-uuid",
      "not*base64!",
      "-bad-.example",
    ])
      expect(text.stdout + text.stderr).not.toContain(value);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; violations: { key: string; kind: string }[] };
    expect(report.ok).toBe(false);
    expect(report.violations.map((v) => `${v.key}:${v.kind}`).sort()).toEqual(
      [
        ...Object.keys(BAD)
          .filter((k) => k !== "REGION")
          .map((k) => `${k}:format`),
        "REGION:pattern",
        "API_TOKEN:missing",
      ].sort(),
    );

    expectSuccess(await p.cli(["env", "set", ...Object.entries(GOOD).map(([k, v]) => `${k}=${v}`)]));
    const fixed = await p.cli(["env", "check"]);
    expect(fixed.code, fixed.stdout).toBe(0);
  });

  it("`env set` rejects a value failing its format or pattern, and stores nothing", async () => {
    const p = await withSchema(GOOD);
    const vault = await p.vaultFile();
    const before = await readFile(vault);
    const results = await Promise.all(
      Object.entries(BAD).map(([key, bad]) => p.cli(["env", "set", "WORKERS=8", `${key}=${bad}`])),
    );
    results.forEach((r, i) => {
      expectFailure(r, "LK_ENV_CHECK_FAILED");
      expect(r.stderr).toContain(Object.keys(BAD)[i]!);
    });
    for (const value of ["not a url", "not-an-email", "{not json", "1234-not-a-uuid", "not*base64!"])
      expect(results.map((r) => r.stderr).join("")).not.toContain(value);
    expectFailure(await p.cli(["env", "set", "PORT"], { input: "70000\n" }), "LK_ENV_CHECK_FAILED");
    expectFailure(
      await p.cli(["env", "import", "-"], { input: "WORKERS=8\nREGION=mars-1\n" }),
      "LK_ENV_CHECK_FAILED",
    );
    expect(await readFile(vault)).toEqual(before);
    expect(await exportJson(p)).toEqual(GOOD);
  });

  it("`run` refuses to start on a missing required key or a bad format, listing them; --no-check starts it", async () => {
    const schema = {
      DATABASE_URL: { required: true, format: "url" },
      API_TOKEN: { required: true },
      PORT: { format: "port", default: "8080" },
    };
    const p = await withSchema({ DATABASE_URL: "not a url" }, schema);
    const marker = join(p.root, "started");
    const [refused, envRun] = await Promise.all([
      p.cli(runNode(TOUCH, marker)),
      p.cli(["env", ...runNode(TOUCH, marker)]),
    ]);
    for (const r of [refused, envRun]) {
      expectFailure(r, "LK_ENV_CHECK_FAILED");
      expect(r.stderr).toContain("DATABASE_URL");
      expect(r.stderr).toContain("API_TOKEN");
      expect(r.stderr).not.toContain("PORT");
      expect(r.stderr).not.toContain("not a url");
    }
    expect(existsSync(marker)).toBe(false);

    const forced = await p.cli(["run", "--no-check", "--", NODE, "-e", TOUCH, marker]);
    expectSuccess(forced);
    expect(await readFile(marker, "utf8")).toBe("started");
  });

  it("applies defaults at run; values set in the vault win over them", async () => {
    const schema = {
      PORT: { format: "port", default: "8080" },
      LOG_LEVEL: { default: "info", pattern: "^(debug|info|warn)$" },
      REGION: { default: "eu-west-1" },
    };
    const p = await withSchema({ LOG_LEVEL: "debug" }, schema);
    const r = await p.cli(runNode(PRINT_ENV, "PORT", "LOG_LEVEL", "REGION"));
    expectSuccess(r);
    expect(JSON.parse(r.stdout)).toEqual({ PORT: "8080", LOG_LEVEL: "debug", REGION: "eu-west-1" });
    expect((await p.cli(["env", "check"])).code).toBe(0);
    // Defaults are applied to the program, not stored.
    expect(await exportJson(p)).toEqual({ LOG_LEVEL: "debug" });
  });
});

describe("bad input gets a clear error and loses nothing", () => {
  it("invalid key names", async () => {
    const p = await seeded({ KEEP: "kept" });
    const before = await snapshot(p.root);
    const bad = ["1A", "A-B", "A B", "A.B", "É", "", "$X"];
    const results = await Promise.all([
      ...bad.map((name) => p.cli(["env", "set", "GOOD=1", `${name}=x`])),
      ...bad.filter((n) => n !== "").map((name) => p.cli(["env", "set", name], { input: "x" })),
      p.cli(["env", "get", "A-B"]),
      p.cli(["env", "unset", "A-B"]),
    ]);
    for (const r of results) expectFailure(r, "LK_ENV_KEY_INVALID");
    // Environment names are checked too: they may end up in file names and URLs.
    const badEnvs = await Promise.all(
      ["../x", "a/b", "", "-x", ".hidden"].flatMap((name) => [
        p.cli(["env", "set", `--env=${name}`, "A=1"]),
        p.cli(["env", "get", `--env=${name}`, "KEEP"]),
      ]),
    );
    for (const r of badEnvs) expectFailure(r, "LK_USAGE");
    expect(await snapshot(p.root)).toEqual(before);
    expect(await exportJson(p)).toEqual({ KEEP: "kept" });
  });

  it("a value containing NUL from stdin", async () => {
    const p = await seeded({ KEEP: "kept" });
    const before = await snapshot(p.root);
    const r = await p.cli(["env", "set", "WITH_NUL"], { input: "abc-visible\0def" });
    expectFailure(r, "LK_ENV_VALUE_INVALID");
    expect(r.stderr).not.toContain("abc-visible");
    expect(await snapshot(p.root)).toEqual(before);
  });

  it("a malformed latchkey.json: the error names the file and line:column; file and vault untouched", async () => {
    const p = await seeded({ KEEP: "kept" });
    const id = await p.vaultId();
    const good = await readFile(p.file, "utf8");
    const cases: [text: string, position: string][] = [
      [`{\n  "vault": "${id}",\n  "name": "app",\n}\n`, "3:16"],
      [`{\n  // a comment\n  "vault": "${id}"\n}\n`, "2:3"],
      [`{\n  "vault": "${id}"\n`, "3:1"],
      [`{ "vault": 42 }`, "1:12"],
      [`[ "${id}" ]`, "1:1"],
    ];
    for (const [text, position] of cases) {
      await writeFile(p.file, text);
      const before = await snapshot(p.root);
      const results = await Promise.all(
        [
          ["env", "set", "NEW=1"],
          ["env", "get", "KEEP"],
          ["env", "list"],
          ["env", "import", "-"],
          runNode(TOUCH, join(p.root, "marker")),
        ].map((args) => p.cli(args, { input: "NEW=1\n" })),
      );
      for (const r of results) {
        expectFailure(r, "LK_PROJECT_INVALID");
        expect(r.stderr, text).toContain(`${p.file}:${position}`);
      }
      expect(await snapshot(p.root)).toEqual(before);
    }

    // Valid JSON with an invalid envSchema: named precisely, and nothing is written either.
    await writeFile(p.file, `{ "vault": "${id}", "envSchema": { "PORT": { "format": "portnumber" } } }\n`);
    const before = await snapshot(p.root);
    for (const args of [
      ["env", "set", "NEW=1"],
      ["env", "get", "KEEP"],
    ]) {
      const r = await p.cli(args);
      expectFailure(r, "LK_ENV_SCHEMA_INVALID");
      expect(r.stderr).toContain(p.file);
      expect(r.stderr).toContain("envSchema.PORT.format");
    }
    expect(await snapshot(p.root)).toEqual(before);

    await writeFile(p.file, good);
    expect(await exportJson(p)).toEqual({ KEEP: "kept" });
  });

  it("an unknown environment on read is LK_ENV_NOT_FOUND", async () => {
    const p = await seeded({ KEEP: "kept" });
    const before = await snapshot(p.root);
    const marker = join(p.root, "marker");
    const results = await Promise.all(
      [
        ["env", "get", "--env", "nope", "KEEP"],
        ["env", "list", "--env", "nope"],
        ["env", "export", "--env", "nope"],
        ["env", "unset", "--env", "nope", "KEEP"],
        ["run", "--env", "nope", "--", NODE, "-e", TOUCH, marker],
      ].map((args) => p.cli(args)),
    );
    for (const r of results) expectFailure(r, "LK_ENV_NOT_FOUND");
    expect(await snapshot(p.root)).toEqual(before);
    expect((await p.cli(["env", "envs"])).stdout).toBe("default (1 secret)\n");
  });

  it("`env check` on an unknown environment is LK_ENV_NOT_FOUND, not a pass", async () => {
    // A typo in `latchkey env check --env prodution` in CI must fail, not report that every rule holds.
    const p = await seeded({ KEEP: "kept" });
    const [text, json] = await Promise.all([
      p.cli(["env", "check", "--env", "nope"]),
      p.cli(["env", "check", "--env", "nope", "--json"]),
    ]);
    expectFailure(text, "LK_ENV_NOT_FOUND");
    // With --json the error is one JSON object on stderr, with the same exit code.
    expect(JSON.parse(json.stderr)).toMatchObject({ code: "LK_ENV_NOT_FOUND" });
    expect(json.stdout).toBe("");
    expect(json.code).toBe(text.code);
  });

  for (const where of ["last", "middle"] as const) {
    it(`a vault file that fails to decrypt (${where} byte flipped) is LK_VAULT_DECRYPT_FAILED and never overwritten`, async () => {
      const p = await seeded({ KEEP: "kept" });
      const vault = await p.vaultFile();
      const original = await readFile(vault);
      const corrupt = Buffer.from(original);
      const at = where === "last" ? corrupt.length - 1 : Math.floor(corrupt.length / 2);
      corrupt[at] = corrupt[at]! ^ 0x01;
      await writeFile(vault, corrupt);
      const before = await snapshot(p.root);
      const marker = join(p.root, "marker");
      const results = await Promise.all(
        [
          ["env", "get", "KEEP"],
          ["env", "list"],
          ["env", "export", "--format", "json"],
          ["env", "envs"],
          ["env", "check"],
          ["run", "--", NODE, "-e", TOUCH, marker],
          ["env", "set", "NEW=1"],
          ["env", "set", "KEEP=overwritten"],
          ["env", "unset", "KEEP"],
          ["env", "import", "-"],
        ].map((args) => p.cli(args, { input: "NEW=1\n" })),
      );
      const stdinSet = await p.cli(["env", "set", "FROM_STDIN"], { input: "v" });
      for (const r of [...results, stdinSet]) {
        expectFailure(r, "LK_VAULT_DECRYPT_FAILED");
        expect(r.stderr).toContain(vault);
      }
      expect(await readFile(vault)).toEqual(corrupt);
      expect(await snapshot(p.root)).toEqual(before);

      // Restored, the vault holds exactly what it held: nothing was lost or half-written meanwhile.
      await writeFile(vault, original);
      expect(await exportJson(p)).toEqual({ KEEP: "kept" });
    });
  }

  it("a vault whose key this machine no longer has is LK_VAULT_KEY_MISSING, and `set` does not replace it", async () => {
    const p = await seeded({ KEEP: "kept" });
    const vault = await p.vaultFile();
    const original = await readFile(vault);
    const keystore = await Promise.all(
      ["store.enc", "store.key"].map(async (f) => [f, await readFile(join(p.latchkeyHome, f))] as const),
    );
    for (const [f] of keystore) await rm(join(p.latchkeyHome, f));
    for (const args of [
      ["env", "get", "KEEP"],
      ["env", "set", "NEW=1"],
      ["env", "list"],
    ]) {
      expectFailure(await p.cli(args), "LK_VAULT_KEY_MISSING");
    }
    expect(await readFile(vault)).toEqual(original);
    for (const [f, bytes] of keystore) await writeFile(join(p.latchkeyHome, f), bytes, { mode: 0o600 });
    expect(await exportJson(p)).toEqual({ KEEP: "kept" });
  });
});
