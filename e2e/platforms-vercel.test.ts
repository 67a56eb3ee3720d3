// `latchkey env platforms` with the real server process, the built CLI and the loopback Vercel double
// (docs/platforms.md, "Commands" and "Vercel"): an `encrypted` connection's push, a value changed on the platform
// imported by `platforms pull` into the local vault (names only in the output), `--dry-run` that sends no write,
// a partial failure recorded as `partial` with the names not written, `--prune`; a `sensitive` connection's pull
// refused. Values are compared by digest, so that no value reaches the test's output even when an assertion fails.
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  startVercelDouble,
  type VercelDouble,
} from "../packages/cli/test/support/platforms/vercel-double.js";
import {
  latchkey,
  loginCli,
  newMachine,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
  type ProcessResult,
} from "./support/latchkey-server.js";
import { ok, projectDir, refused } from "./support/teams.js";

const ANN = { email: "platforms-vercel-ann@example.com", password: "platforms vercel ann password for e2e" };
const TOKEN = "vercel-token-canary-0c5e91d2";
const PROJECT = "prj_web";
const TEAM = "team_acme";
const API_KEY = "lk-e2e-vercel-api-key-canary-6a1f";
const DB_URL = "postgres://db.internal/vercel-canary-93e2";
const ON_PLATFORM = "lk-e2e-vercel-changed-on-platform-d40b";
const FROM_VERCEL = "lk-e2e-vercel-only-value-18c7";
const PREVIEW = "lk-e2e-vercel-preview-only-5f3a";
const CANARIES = [TOKEN, API_KEY, DB_URL, ON_PLATFORM, FROM_VERCEL, PREVIEW];

const digest = (value: string | undefined): string =>
  value === undefined ? "(absent)" : createHash("sha256").update(value).digest("hex").slice(0, 16);

interface LastPush {
  version: number;
  added: number;
  changed: number;
  removed: number;
  outcome: string;
  message: string | null;
}

describe("env platforms with the server and a Vercel double", () => {
  let root: string;
  let server: LatchkeyServer;
  let m: Machine;
  let dir: string;
  let vercel: VercelDouble;
  const outputs: ProcessResult[] = [];

  const run = async (args: string[], input?: string): Promise<ProcessResult> => {
    const result = await latchkey(m, args, { cwd: dir, ...(input === undefined ? {} : { input }) });
    outputs.push(result);
    return result;
  };
  /** The local vault's environment, each value as its digest (the export's output is kept out of `outputs`). */
  const vaultDigests = async (): Promise<Record<string, string>> => {
    const exported = await latchkey(m, ["env", "export", "-e", "default", "--format", "json"], { cwd: dir });
    expect(exported.code, exported.stderr).toBe(0);
    const values = JSON.parse(exported.stdout) as Record<string, string>;
    return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, digest(v)]));
  };
  /** The double's entries for production, each value as its digest. */
  const platformDigests = (): Record<string, string> =>
    Object.fromEntries(
      vercel.entries.filter((e) => e.target.includes("production")).map((e) => [e.key, digest(e.value)]),
    );
  const lastPush = async (name: string): Promise<LastPush | null> => {
    const listed = JSON.parse(ok(await run(["env", "platforms", "status", "--json"])).stdout) as {
      connections: { name: string; lastPush: LastPush | null }[];
    };
    return listed.connections.find((c) => c.name === name)?.lastPush ?? null;
  };
  const connect = (...more: string[]) =>
    run(
      [
        "env",
        "platforms",
        "connect",
        "vercel",
        "--env",
        "default",
        "--project",
        PROJECT,
        "--team",
        TEAM,
        "--base-url",
        vercel.url,
        "--credential-stdin",
        ...more,
      ],
      `${TOKEN}\n`,
    );

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-platforms-vercel-"));
    server = await startServerWithUser({ dataDir: join(root, "server") }, ANN);
    m = await newMachine(root, "ann");
    ok(await loginCli(m, server, ANN));
    dir = await projectDir(root, "web", "web");
    ok(await run(["env", "set", "API_KEY"], API_KEY));
    ok(await run(["env", "set", "DB_URL"], DB_URL));
    ok(await run(["env", "push"]));
    vercel = await startVercelDouble({ token: TOKEN, project: PROJECT, teamId: TEAM });
  }, 180_000);
  afterAll(async () => {
    await vercel?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("connect --type encrypted → push → a value changed on Vercel → pull imports it, names only", async () => {
    expect(ok(await connect("--type", "encrypted")).stderr).toContain("Connected vercel-default");
    const pushed = ok(await run(["env", "platforms", "push", "vercel-default"]));
    expect(pushed.stderr).toContain("+ API_KEY");
    expect(pushed.stderr).toContain("+ DB_URL");
    expect(vercel.entries.map((e) => [e.key, e.type, e.target])).toEqual([
      ["API_KEY", "encrypted", ["production"]],
      ["DB_URL", "encrypted", ["production"]],
    ]);
    expect(platformDigests()).toEqual({ API_KEY: digest(API_KEY), DB_URL: digest(DB_URL) });
    expect(await lastPush("vercel-default")).toMatchObject({ version: 1, added: 2, outcome: "ok" });

    // Someone changes a value in Vercel's dashboard and adds one; an entry of another target is not the
    // connection's.
    vercel.entries.find((e) => e.key === "API_KEY")!.value = ON_PLATFORM;
    vercel.entries.push(
      { id: "env_dash_1", key: "FROM_VERCEL", value: FROM_VERCEL, type: "encrypted", target: ["production"] },
      { id: "env_dash_2", key: "PREVIEW_ONLY", value: PREVIEW, type: "encrypted", target: ["preview"] },
    );
    const pulled = ok(await run(["env", "platforms", "pull", "vercel-default"]));
    expect(pulled.stderr).toContain(
      "Imported from vercel-default into environment default: 1 new name, 1 changed value, 1 unchanged.",
    );
    expect(pulled.stderr).toContain("+ FROM_VERCEL");
    expect(pulled.stderr).toContain("~ API_KEY");
    expect(pulled.stderr).not.toContain("PREVIEW_ONLY");
    expect(await vaultDigests()).toEqual({
      API_KEY: digest(ON_PLATFORM),
      DB_URL: digest(DB_URL),
      FROM_VERCEL: digest(FROM_VERCEL),
    });
    // A pull is audited, and is not a push: the last push stays as it was.
    expect(await lastPush("vercel-default")).toMatchObject({ version: 1, added: 2, outcome: "ok" });
    const log = JSON.parse(ok(await run(["env", "log", "--json"])).stdout) as {
      entries: { action: string; metadata?: unknown }[];
    };
    expect(log.entries.map((e) => e.action)).toEqual(
      expect.arrayContaining(["platform.connect", "platform.push", "platform.pull"]),
    );
    expect(vercel.refusals).toEqual([]);
  }, 180_000);

  it("--dry-run sends no write; a refused name is recorded as partial; --prune deletes what the vault lacks", async () => {
    // The pulled change goes to the server; the platform-only name does not.
    ok(await run(["env", "unset", "FROM_VERCEL"]));
    ok(await run(["env", "push"]));

    const before = vercel.requests.length;
    const plan = ok(await run(["env", "platforms", "push", "vercel-default", "--dry-run", "--prune"]));
    expect(plan.stderr).toContain("~ API_KEY");
    expect(plan.stderr).toContain("~ DB_URL");
    expect(plan.stderr).toContain("- FROM_VERCEL");
    expect(plan.stderr).toContain("Dry run: nothing was sent to the platform.");
    const sent = vercel.requests.slice(before);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.map((r) => r.method)).toEqual(sent.map(() => "GET"));
    expect(vercel.entries.some((e) => e.key === "FROM_VERCEL")).toBe(true);
    expect(await lastPush("vercel-default")).toMatchObject({ version: 1 });

    // Vercel refuses one name: the others are written, the push exits 1 and the status names the refused one.
    vercel.refuseKeys.add("DB_URL");
    const partial = await run(["env", "platforms", "push", "vercel-default"]);
    expect(partial.code, partial.stderr).toBe(1);
    expect(partial.stderr).toContain("not written: DB_URL (refused: ENV_CONFLICT)");
    expect(partial.stderr).not.toContain("- FROM_VERCEL");
    expect(await lastPush("vercel-default")).toMatchObject({
      version: 2,
      added: 0,
      changed: 1,
      removed: 0,
      outcome: "partial",
      message: "1 name not written: DB_URL",
    });
    expect(vercel.entries.some((e) => e.key === "FROM_VERCEL")).toBe(true);
    vercel.refuseKeys.clear();

    const pruned = ok(await run(["env", "platforms", "push", "vercel-default", "--prune"]));
    expect(pruned.stderr).toContain("- FROM_VERCEL");
    expect(vercel.requests.some((r) => r.method === "DELETE" && r.url.includes("/env_dash_1"))).toBe(true);
    expect(platformDigests()).toEqual({ API_KEY: digest(ON_PLATFORM), DB_URL: digest(DB_URL) });
    // Another target's entry is not the connection's to prune.
    expect(vercel.entries.some((e) => e.key === "PREVIEW_ONLY")).toBe(true);
    expect(await lastPush("vercel-default")).toMatchObject({
      version: 2,
      added: 0,
      changed: 2,
      removed: 1,
      outcome: "ok",
      message: null,
    });
    expect(vercel.refusals).toEqual([]);
  }, 180_000);

  it("a sensitive connection's pull is refused with the reason and a hint, and changes nothing", async () => {
    ok(await connect("--type", "sensitive", "--name", "vercel-sensitive"));
    const vault = await vaultDigests();
    const before = vercel.requests.length;
    const pull = refused(
      await run(["env", "platforms", "pull", "vercel-sensitive"]),
      "LK_PLATFORM_PULL_UNSUPPORTED",
    );
    expect(pull.stderr).toContain(
      "vercel keeps the values of connection vercel-sensitive write-only: there is nothing to pull from it. Nothing was changed.",
    );
    expect(pull.stderr).toContain("Pull from the vault instead");
    expect(vercel.requests.length).toBe(before);
    expect(await vaultDigests()).toEqual(vault);
  }, 120_000);

  it("no value and no token in any CLI output", () => {
    expect(outputs.length).toBeGreaterThan(10);
    for (const text of outputs.flatMap((o) => [o.stdout, o.stderr]))
      for (const canary of CANARIES) expect(text.includes(canary), canary.slice(0, 14)).toBe(false);
  });
});
