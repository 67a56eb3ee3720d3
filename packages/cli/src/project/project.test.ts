import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForTest } from "../../../../e2e/support/bundle.js";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ExitCode, isLatchkeyError } from "@latchkey/core";
import type { LatchkeyError } from "@latchkey/core";
import {
  MAX_PROJECT_FILE_BYTES,
  PROJECT_FILE,
  findProject,
  loadOrCreateProject,
  parseProject,
  projectRootFor,
  resolveVaultId,
  updateProjectField,
} from "./project.js";

const posixOnly = process.platform === "win32" ? it.skip : it;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ID = "0b7e9a52-3c1d-4f6e-8a9b-1c2d3e4f5a6b";
const fixedId = () => ID;

let tmp: string;
/** A home directory outside the test tree, so the developer's own home never affects the tests. */
let home: string;
beforeEach(async () => {
  tmp = await realpath(await mkdtemp(join(tmpdir(), "latchkey-project-")));
  home = join(tmp, "elsewhere", "home");
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function dir(...parts: string[]): Promise<string> {
  const path = join(tmp, ...parts);
  await mkdir(path, { recursive: true });
  return path;
}

async function put(path: string, text: string | Uint8Array): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
  return path;
}

async function caught(promise: Promise<unknown> | (() => unknown)): Promise<LatchkeyError> {
  let err: unknown;
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (e) {
    err = e;
  }
  if (!isLatchkeyError(err)) throw new Error(`expected a LatchkeyError, got ${String(err)}`);
  return err;
}

function newFile(id: string): string {
  return `{\n  "vault": "${id}"\n}\n`;
}

describe("findProject", () => {
  it("returns null when no directory up to the root has latchkey.json", async () => {
    expect(await findProject(await dir("a", "b"))).toBeNull();
  });

  it("walks up from a nested cwd and returns the parsed file", async () => {
    const text = `{\n  "vault": "${ID}",\n  "name": "app",\n  "profile": "work",\n  "envSchema": { "A": { "required": true } },\n  "vaultSync": { "personalVersion": 2 },\n  "other": 1\n}\n`;
    const file = await put(join(tmp, "repo", PROJECT_FILE), text);
    const project = await findProject(await dir("repo", "src", "deep", "er"));
    expect(project).toEqual({
      root: join(tmp, "repo"),
      file,
      raw: text,
      config: {
        vault: ID,
        name: "app",
        profile: "work",
        envSchema: { A: { required: true } },
        vaultSync: { personalVersion: 2 },
      },
    });
  });

  it("takes the nearest file", async () => {
    await put(join(tmp, PROJECT_FILE), newFile(randomUUID()));
    await put(join(tmp, "inner", PROJECT_FILE), newFile(ID));
    expect((await findProject(await dir("inner", "x")))?.root).toBe(join(tmp, "inner"));
  });

  it("fails on a malformed nearer file rather than falling back to an outer project", async () => {
    await put(join(tmp, PROJECT_FILE), newFile(ID));
    await put(join(tmp, "inner", PROJECT_FILE), "{,}");
    expect((await caught(findProject(await dir("inner")))).code).toBe("LK_PROJECT_INVALID");
  });

  it("returns a file without a vault with config.vault undefined", async () => {
    await put(join(tmp, PROJECT_FILE), '{"name": "x"}');
    expect((await findProject(tmp))?.config).toEqual({
      vault: undefined,
      name: "x",
      profile: undefined,
      envSchema: undefined,
      vaultSync: undefined,
    });
  });

  it("ignores inherited names such as __proto__ and constructor", async () => {
    await put(join(tmp, PROJECT_FILE), '{"__proto__": {"vault": "x"}}');
    expect((await findProject(tmp))?.config.vault).toBeUndefined();
  });

  posixOnly(
    "refuses a symlinked latchkey.json (LK_FILE_SYMLINK), like every file Latchkey writes",
    async () => {
      const real = await put(join(tmp, "real.json"), newFile(ID));
      await symlink(real, join(tmp, PROJECT_FILE));
      expect((await caught(findProject(tmp))).code).toBe("LK_FILE_SYMLINK");
    },
  );

  it("refuses a file over the size limit and one that is not UTF-8", async () => {
    const file = await put(join(tmp, PROJECT_FILE), `{"a": "${"x".repeat(MAX_PROJECT_FILE_BYTES)}"}`);
    const big = await caught(findProject(tmp));
    expect(big.code).toBe("LK_PROJECT_INVALID");
    expect(big.message).toContain(file);
    await put(file, new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]));
    const binary = await caught(findProject(tmp));
    expect(binary.code).toBe("LK_PROJECT_INVALID");
    expect(binary.message).toBe(`Invalid latchkey.json at ${file}: it is not valid UTF-8 text.`);
  });
});

describe("loadOrCreateProject: where a new latchkey.json goes", () => {
  it("creates nothing without create", async () => {
    const cwd = await dir("repo", ".git");
    expect(await loadOrCreateProject(join(tmp, "repo"), { create: false, home })).toBeNull();
    expect(await readdir(join(tmp, "repo"))).toEqual([".git"]);
    expect(cwd).toBeTruthy();
  });

  it("creates it in the nearest ancestor holding .git, with a UUID v4 and mode 0644", async () => {
    await dir("repo", ".git");
    const cwd = await dir("repo", "src", "deep");
    const project = await loadOrCreateProject(cwd, { create: true, home });
    const file = join(tmp, "repo", PROJECT_FILE);
    expect(project.file).toBe(file);
    expect(project.root).toBe(join(tmp, "repo"));
    expect(project.change).toBe("created");
    expect(project.config.vault).toMatch(UUID_V4);
    const text = await readFile(file, "utf8");
    expect(text).toBe(newFile(project.config.vault ?? ""));
    expect(project.raw).toBe(text);
    if (process.platform !== "win32") expect((await stat(file)).mode & 0o777).toBe(0o644);
    expect((await readdir(join(tmp, "repo"))).sort()).toEqual([".git", PROJECT_FILE, "src"]);
  });

  it("treats a .git file (worktree, submodule) as a marker too", async () => {
    await put(join(tmp, "wt", ".git"), "gitdir: /elsewhere\n");
    const cwd = await dir("wt", "lib");
    expect((await loadOrCreateProject(cwd, { create: true, home, random: fixedId })).root).toBe(
      join(tmp, "wt"),
    );
  });

  it("prefers a nearer package.json to an outer .git (a workspace package)", async () => {
    await dir("mono", ".git");
    await put(join(tmp, "mono", "package.json"), "{}");
    await put(join(tmp, "mono", "packages", "api", "package.json"), "{}");
    const cwd = await dir("mono", "packages", "api", "src");
    expect(projectRootFor(cwd, home)).toBe(join(tmp, "mono", "packages", "api"));
    expect(projectRootFor(await dir("mono", "docs"), home)).toBe(join(tmp, "mono"));
  });

  it("uses cwd itself when it holds the marker, and when no ancestor does", async () => {
    const marked = await dir("m");
    await put(join(marked, "package.json"), "{}");
    expect(projectRootFor(marked, home)).toBe(marked);
    const plain = await dir("plain", "sub");
    const project = await loadOrCreateProject(plain, { create: true, home, random: fixedId });
    expect(project.file).toBe(join(plain, PROJECT_FILE));
  });

  it("never counts the home directory (a dotfiles .git) or anything above it", async () => {
    const userHome = await dir("home", "me");
    await dir("home", "me", ".git");
    await dir("home", ".git");
    const cwd = await dir("home", "me", "scratch", "x");
    expect(projectRootFor(cwd, userHome)).toBe(cwd);
    expect(projectRootFor(userHome, userHome)).toBe(userHome);
    await dir("home", "me", "proj", ".git");
    expect(projectRootFor(await dir("home", "me", "proj", "a"), userHome)).toBe(join(userHome, "proj"));
  });

  it("validates the generated id and writes nothing when it is unsafe", async () => {
    const cwd = await dir("p");
    const err = await caught(loadOrCreateProject(cwd, { create: true, home, random: () => "../../etc" }));
    expect(err.code).toBe("LK_VAULT_ID_INVALID");
    expect(await readdir(cwd)).toEqual([]);
  });
});

describe("loadOrCreateProject: an existing latchkey.json", () => {
  it("leaves a file that has a vault alone", async () => {
    const file = await put(join(tmp, PROJECT_FILE), newFile(ID));
    const before = await stat(file);
    const project = await loadOrCreateProject(tmp, { create: true, home, random: () => randomUUID() });
    expect(project.change).toBeNull();
    expect(project.config.vault).toBe(ID);
    const after = await stat(file);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it("only reads a file without a vault when create is false", async () => {
    const file = await put(join(tmp, PROJECT_FILE), '{"name": "x"}');
    const project = await loadOrCreateProject(tmp, { create: false, home });
    expect(project?.config.vault).toBeUndefined();
    expect(project?.change).toBeNull();
    expect(await readFile(file, "utf8")).toBe('{"name": "x"}');
  });

  const V = `"vault": "${ID}"`;
  it.each([
    [
      "2 spaces",
      '{\n  "name": "app",\n  "envSchema": {\n    "API_URL": { "required": true, "format": "url" }\n  },\n  "x": [1, 2, {"y": null}]\n}\n',
      `{\n  ${V},\n  "name": "app",\n  "envSchema": {\n    "API_URL": { "required": true, "format": "url" }\n  },\n  "x": [1, 2, {"y": null}]\n}\n`,
    ],
    [
      "4 spaces",
      '{\n    "name": "app",\n    "envSchema": {\n        "A": {}\n    }\n}\n',
      `{\n    ${V},\n    "name": "app",\n    "envSchema": {\n        "A": {}\n    }\n}\n`,
    ],
    ["tabs", '{\n\t"name": "app",\n\t"n": 1.50\n}\n', `{\n\t${V},\n\t"name": "app",\n\t"n": 1.50\n}\n`],
    [
      "CRLF",
      '{\r\n  "name": "app",\r\n  "b": true\r\n}\r\n',
      `{\r\n  ${V},\r\n  "name": "app",\r\n  "b": true\r\n}\r\n`,
    ],
    ["minified", '{"a":1}', `{"vault":"${ID}","a":1}`],
    ["minified with a newline", '{"a":1,"b":{"c":[]}}\n', `{"vault":"${ID}","a":1,"b":{"c":[]}}\n`],
    ["one line with spaces", '{ "a": 1 }\n', `{ ${V}, "a": 1 }\n`],
    ["empty object", "{}", `{\n  ${V}\n}`],
    ["empty object and newline", "{}\n", `{\n  ${V}\n}\n`],
    ["empty object, CRLF", "{}\r\n", `{\r\n  ${V}\r\n}\r\n`],
    ["no final newline", '{\n  "a": 1\n}', `{\n  ${V},\n  "a": 1\n}`],
    ["byte order mark", '\ufeff{\n  "a": 1\n}\n', `\ufeff{\n  ${V},\n  "a": 1\n}\n`],
    [
      "odd but valid spacing and escapes",
      '\n{\n  "a"   :   "\\u00e9\\n" ,\n\n  "b":[ ]\n}\n\n',
      `\n{\n  "vault"   :   "${ID}",\n  "a"   :   "\\u00e9\\n" ,\n\n  "b":[ ]\n}\n\n`,
    ],
  ])("adds the vault to a %s file, every other byte kept", async (_name, before, after) => {
    const file = await put(join(tmp, PROJECT_FILE), before);
    const project = await loadOrCreateProject(tmp, { create: true, home, random: fixedId });
    expect(project.change).toBe("added-vault");
    expect(project.config.vault).toBe(ID);
    expect(await readFile(file, "utf8")).toBe(after);
    expect(project.raw).toBe(after);
    expect(await readdir(tmp)).toEqual([PROJECT_FILE]);
  });

  posixOnly("keeps the file's permission bits", async () => {
    for (const mode of [0o600, 0o664, 0o640]) {
      const file = await put(join(tmp, PROJECT_FILE), '{"a": 1}');
      await chmod(file, mode);
      await loadOrCreateProject(tmp, { create: true, home, random: fixedId });
      expect((await stat(file)).mode & 0o777).toBe(mode);
    }
  });
});

describe("malformed latchkey.json", () => {
  it.each([
    ["a trailing comma", '{\n  "a": 1,\n}\n', "2:9", 'trailing comma before "}"'],
    ["CRLF lines", '{\r\n  "a": 1,\r\n}\r\n', "2:9", "trailing comma"],
    ["a comment (JSONC is not supported)", '{\n  // secrets\n  "a": 1\n}\n', "2:3", "not JSONC"],
    ["a block comment", '{\n  "a": 1 /* x */\n}', "2:10", "comments are not allowed"],
    ["a missing comma", '{\n  "a": 1\n  "b": 2\n}', "3:3", 'expected "," or "}"'],
    ["single quotes", "{'vault': 'x'}", "1:2", "double quotes"],
    ["an unterminated string", '{\n  "a": "b\n}', "2:10", "must be escaped inside a string"],
    ["an empty file", "", "1:1", "expected a JSON value, found the end of the file"],
    ["an array", "[]\n", "1:1", "the top level must be an object, not an array"],
    ["a string", '  "x"', "1:3", "the top level must be an object, not a string"],
    ["null", "null", "1:1", "not null"],
    ["a numeric vault", '{\n  "vault": 42\n}', "2:12", '"vault" must be a string, not a number'],
    ["a null vault", '{"vault": null}', "1:11", '"vault" must be a string, not null'],
    [
      "a vault escaping the vaults dir",
      '{\n  "vault": "../../x"\n}',
      "2:12",
      'not a valid vault id: it contains ".."',
    ],
    ["an empty vault", '{"vault": ""}', "1:11", "it is empty"],
    ["a vault with a slash", '{"vault": "a/b"}', "1:11", 'it contains "/"'],
    ["a vault with a backslash", '{"vault": "a\\\\b"}', "1:11", 'it contains "\\"'],
    ["a vault with a drive", '{"vault": "C:x"}', "1:11", 'drive prefix "C:"'],
    ["a vault with a tilde", '{"vault": "~x"}', "1:11", 'starts with "~"'],
    ["a vault with NUL", '{"vault": "a\\u0000b"}', "1:11", "control character U+0000"],
    ["a duplicate vault", '{"vault": "a",\n "vault": "b"}', "2:2", 'duplicate property "vault"'],
    ["a byte order mark before an error", '\ufeff{\n  "a": 1,\n}', "2:9", "trailing comma"],
    ["content after the object", '{"a": 1}\n{"b": 2}\n', "2:1", "expected the end of the file"],
  ])("reports %s at file:line:column and leaves the file untouched", async (_name, text, at, reason) => {
    const file = await put(join(tmp, PROJECT_FILE), text);
    const before = await readFile(file);
    const err = await caught(loadOrCreateProject(tmp, { create: true, home, random: fixedId }));
    expect(err.code).toBe("LK_PROJECT_INVALID");
    expect(err.message).toContain(`Invalid latchkey.json at ${file}:${at}: `);
    expect(err.message).toContain(reason);
    expect(err.hint).toContain("left the file untouched");
    expect(err.exitCode).toBe(ExitCode.failure);
    const [line, column] = at.split(":").map(Number);
    expect(err.details).toEqual({ path: file, line, column });
    expect(Buffer.compare(await readFile(file), before)).toBe(0);
    expect(await readdir(tmp)).toEqual([PROJECT_FILE]);
  });

  it("parseProject reports the same without touching the disk", () => {
    expect(() => parseProject("{,}", "/p/latchkey.json")).toThrow(
      'Invalid latchkey.json at /p/latchkey.json:1:2: expected a property name in double quotes, found ","',
    );
  });
});

describe("resolveVaultId", () => {
  const project = { file: "/p/latchkey.json", config: parseProject(newFile(ID), "/p/latchkey.json") };
  const other = randomUUID();

  it("uses the project's id, and LATCHKEY_VAULT_ID over it", () => {
    expect(resolveVaultId({}, project)).toBe(ID);
    expect(resolveVaultId({ LATCHKEY_VAULT_ID: other }, project)).toBe(other);
    expect(resolveVaultId({ LATCHKEY_VAULT_ID: other }, null)).toBe(other);
  });

  it("takes either spelling of an id, from latchkey.json or LATCHKEY_VAULT_ID, as its one spelling", () => {
    const upper = {
      file: "/p/latchkey.json",
      config: parseProject(newFile(ID.toUpperCase()), "/p/latchkey.json"),
    };
    expect(upper.config.vault).toBe(ID);
    expect(resolveVaultId({}, upper)).toBe(ID);
    expect(resolveVaultId({ LATCHKEY_VAULT_ID: other.toUpperCase() }, project)).toBe(other);
  });

  it("validates LATCHKEY_VAULT_ID, naming it, and treats an empty value as an error", async () => {
    const bad = await caught(() => resolveVaultId({ LATCHKEY_VAULT_ID: "../x" }, project));
    expect(bad.code).toBe("LK_VAULT_ID_INVALID");
    expect(bad.exitCode).toBe(ExitCode.usage);
    expect(bad.message).toBe('Invalid vault id from LATCHKEY_VAULT_ID: it contains "..".');
    const empty = await caught(() => resolveVaultId({ LATCHKEY_VAULT_ID: "" }, project));
    expect(empty.message).toBe("Invalid vault id from LATCHKEY_VAULT_ID: it is empty.");
  });

  it("fails with LK_PROJECT_NOT_FOUND when nothing names a vault", async () => {
    const none = await caught(() => resolveVaultId({}, null));
    expect(none.code).toBe("LK_PROJECT_NOT_FOUND");
    const empty = { file: "/p/latchkey.json", config: parseProject("{}", "/p/latchkey.json") };
    const noVault = await caught(() => resolveVaultId({}, empty));
    expect(noVault.message).toContain("/p/latchkey.json has no");
  });
});

describe("a moved or renamed project", () => {
  it("keeps its vault: the id lives in the file, not in the path", async () => {
    await dir("old-name", ".git");
    const created = await loadOrCreateProject(await dir("old-name", "src"), { create: true, home });
    const text = await readFile(created.file, "utf8");

    await mkdir(join(tmp, "moved", "deeper"), { recursive: true });
    await rename(join(tmp, "old-name"), join(tmp, "moved", "deeper", "new-name"));
    const cwd = join(tmp, "moved", "deeper", "new-name", "src");
    const found = await findProject(cwd);
    expect(found?.root).toBe(join(tmp, "moved", "deeper", "new-name"));
    expect(found?.config.vault).toBe(created.config.vault);
    const again = await loadOrCreateProject(cwd, { create: true, home });
    expect(again.change).toBeNull();
    expect(resolveVaultId({}, again)).toBe(created.config.vault);
    expect(await readFile(again.file, "utf8")).toBe(text);
  });
});

describe("concurrent first use", () => {
  it("16 concurrent creations in one process agree on one id", async () => {
    await dir("repo", ".git");
    const cwd = await dir("repo", "a");
    let generated = 0;
    const random = () => {
      generated++;
      return randomUUID();
    };
    const results = await Promise.all(
      Array.from({ length: 16 }, () => loadOrCreateProject(cwd, { create: true, home, random })),
    );
    const ids = new Set(results.map((r) => r.config.vault));
    expect(ids.size).toBe(1);
    expect(generated).toBe(1);
    expect(results.filter((r) => r.change === "created")).toHaveLength(1);
    const [id] = ids;
    expect(await readFile(join(tmp, "repo", PROJECT_FILE), "utf8")).toBe(newFile(id ?? ""));
    expect((await readdir(join(tmp, "repo"))).sort()).toEqual([".git", "a", PROJECT_FILE]);
  });

  it("16 concurrent additions to a file without a vault agree on one id and keep the rest", async () => {
    const original = '{\n  "name": "app",\n  "envSchema": {}\n}\n';
    const file = await put(join(tmp, PROJECT_FILE), original);
    const results = await Promise.all(
      Array.from({ length: 16 }, () => loadOrCreateProject(tmp, { create: true, home })),
    );
    const ids = new Set(results.map((r) => r.config.vault));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.change === "added-vault")).toHaveLength(1);
    const [id] = ids;
    expect(await readFile(file, "utf8")).toBe(
      `{\n  "vault": "${id}",\n  "name": "app",\n  "envSchema": {}\n}\n`,
    );
  });

  describe("in separate processes", () => {
    let bundleDir: string;
    let childScript: string;
    beforeAll(async () => {
      bundleDir = await mkdtemp(join(tmpdir(), "latchkey-project-bundle-"));
      await bundleForTest({
        entryPoints: [fileURLToPath(new URL("./project.ts", import.meta.url))],
        outfile: join(bundleDir, "project.js"),
      });
      childScript = join(bundleDir, "child.mjs");
      // Each child reports ready, then waits for the go file so all of them race for the lock at once.
      await writeFile(
        childScript,
        `import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { loadOrCreateProject } from "./project.js";
const [cwd, home, go] = process.argv.slice(2);
process.stdout.write("ready\\n");
while (!existsSync(go)) await sleep(2);
const project = await loadOrCreateProject(cwd, { create: true, home });
process.stdout.write(JSON.stringify({ vault: project.config.vault, change: project.change }) + "\\n");
`,
      );
    });
    afterAll(async () => {
      await rm(bundleDir, { recursive: true, force: true });
    });

    async function race(cwd: string, count: number): Promise<{ vault: string; change: string | null }[]> {
      const go = join(tmp, "go");
      const children: ChildProcess[] = [];
      const outputs = Array.from({ length: count }, () => {
        const child = spawn(process.execPath, [childScript, cwd, home, go], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        children.push(child);
        let stdout = "";
        let stderr = "";
        let signalReady!: () => void;
        const ready = new Promise<void>((resolveReady) => (signalReady = resolveReady));
        child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
          stdout += chunk;
          if (stdout.startsWith("ready\n")) signalReady();
        });
        child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        const done = new Promise<{ code: number | null; stdout: string; stderr: string }>(
          (resolveDone, reject) => {
            child.on("error", reject);
            child.on("close", (code) => resolveDone({ code, stdout, stderr }));
          },
        );
        return { ready, done };
      });
      await Promise.all(outputs.map((o) => o.ready));
      await writeFile(go, "");
      const results = await Promise.all(outputs.map((o) => o.done));
      return results.map((r) => {
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
        return JSON.parse(r.stdout.slice("ready\n".length)) as { vault: string; change: string | null };
      });
    }

    it("16 processes creating latchkey.json end with one vault id", async () => {
      await dir("repo", ".git");
      const results = await race(await dir("repo", "pkg"), 16);
      const ids = new Set(results.map((r) => r.vault));
      expect(ids.size).toBe(1);
      expect(results.filter((r) => r.change === "created")).toHaveLength(1);
      const [id] = ids;
      expect(id).toMatch(UUID_V4);
      expect(await readFile(join(tmp, "repo", PROJECT_FILE), "utf8")).toBe(newFile(id ?? ""));
      expect((await readdir(join(tmp, "repo"))).sort()).toEqual([".git", PROJECT_FILE, "pkg"]);
    });

    it("16 processes adding a vault to an existing file end with one id and the rest kept", async () => {
      const file = await put(join(tmp, "repo", PROJECT_FILE), '{\n\t"name": "app"\n}');
      const results = await race(join(tmp, "repo"), 16);
      const ids = new Set(results.map((r) => r.vault));
      expect(ids.size).toBe(1);
      expect(results.filter((r) => r.change === "added-vault")).toHaveLength(1);
      const [id] = ids;
      expect(await readFile(file, "utf8")).toBe(`{\n\t"vault": "${id}",\n\t"name": "app"\n}`);
    });
  });
});

describe("updateProjectField", () => {
  it("inserts vaultSync.personalVersion, then replaces just the number", async () => {
    const file = await put(join(tmp, PROJECT_FILE), `{\n  "vault": "${ID}",\n  "name": "app"\n}\n`);
    const first = await updateProjectField(file, ["vaultSync", "personalVersion"], 1);
    const inserted = `{\n  "vault": "${ID}",\n  "name": "app",\n  "vaultSync": {\n    "personalVersion": 1\n  }\n}\n`;
    expect(await readFile(file, "utf8")).toBe(inserted);
    expect(first.raw).toBe(inserted);
    expect(first.config.vaultSync).toEqual({ personalVersion: 1 });
    await updateProjectField(file, ["vaultSync", "personalVersion"], 12);
    expect(await readFile(file, "utf8")).toBe(
      inserted.replace('"personalVersion": 1', '"personalVersion": 12'),
    );
  });

  it("keeps tabs, CRLF, a byte order mark and minified layouts", async () => {
    const cases = [
      [
        '\ufeff{\r\n\t"vault": "V1"\r\n}\r\n',
        '\ufeff{\r\n\t"vault": "V1",\r\n\t"vaultSync": {\r\n\t\t"v": 2\r\n\t}\r\n}\r\n',
      ],
      ['{"vault":"V1","vaultSync":{"v":1,"w":[]}}', '{"vault":"V1","vaultSync":{"v":2,"w":[]}}'],
    ];
    for (const [before, after] of cases) {
      const file = await put(join(tmp, PROJECT_FILE), before ?? "");
      await updateProjectField(file, ["vaultSync", "v"], 2);
      expect(await readFile(file, "utf8")).toBe(after);
    }
  });

  it("does not rewrite the file when the value is already there", async () => {
    const file = await put(join(tmp, PROJECT_FILE), '{"vaultSync": {"v": 2}}');
    const before = await stat(file);
    await updateProjectField(file, ["vaultSync", "v"], 2);
    expect((await stat(file)).ino).toBe(before.ino);
  });

  posixOnly("keeps the file's permission bits", async () => {
    const file = await put(join(tmp, PROJECT_FILE), "{}");
    await chmod(file, 0o640);
    await updateProjectField(file, ["name"], "x");
    expect((await stat(file)).mode & 0o777).toBe(0o640);
  });

  it("refuses a path through a non-object at file:line:column, leaving the file untouched", async () => {
    const text = '{\n  "vaultSync": "off"\n}\n';
    const file = await put(join(tmp, PROJECT_FILE), text);
    const err = await caught(updateProjectField(file, ["vaultSync", "personalVersion"], 1));
    expect(err.code).toBe("LK_PROJECT_INVALID");
    expect(err.message).toBe(
      `Invalid latchkey.json at ${file}:2:16: "vaultSync" is a string, not an object.`,
    );
    expect(await readFile(file, "utf8")).toBe(text);
    expect(await readdir(tmp)).toEqual([PROJECT_FILE]);
  });

  it("refuses an invalid new vault id and a malformed or missing file", async () => {
    const file = await put(join(tmp, PROJECT_FILE), newFile(ID));
    expect((await caught(updateProjectField(file, ["vault"], "a/b"))).code).toBe("LK_VAULT_ID_INVALID");
    expect(await readFile(file, "utf8")).toBe(newFile(ID));
    const other = randomUUID();
    await updateProjectField(file, ["vault"], other);
    expect(await readFile(file, "utf8")).toBe(newFile(other));

    await put(file, "{,}");
    expect((await caught(updateProjectField(file, ["name"], "x"))).code).toBe("LK_PROJECT_INVALID");
    expect(await readFile(file, "utf8")).toBe("{,}");

    const missing = join(tmp, "none", PROJECT_FILE);
    await mkdir(dirname(missing));
    const err = await caught(updateProjectField(missing, ["name"], "x"));
    expect(err.code).toBe("LK_FILE_IO");
    expect(err.message).toContain(missing);
  });

  it("serializes concurrent updates: none is lost", async () => {
    const file = await put(join(tmp, PROJECT_FILE), newFile(ID));
    await Promise.all(
      Array.from({ length: 16 }, (_, i) => updateProjectField(file, ["vaultSync", `k${i}`], i)),
    );
    const parsed = JSON.parse(await readFile(file, "utf8")) as { vaultSync: Record<string, number> };
    expect(Object.keys(parsed.vaultSync)).toHaveLength(16);
    for (let i = 0; i < 16; i++) expect(parsed.vaultSync[`k${i}`]).toBe(i);
  });
});
