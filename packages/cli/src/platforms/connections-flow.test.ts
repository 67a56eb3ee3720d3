// connect → push in process, against a fake of the personal copy's routes that checks every body with core's
// schemas (test/support/platforms-server.ts) and the loopback Vercel double: the error paths e2e does not reach
// cheaply — names refused by the platform recorded as `partial` (or `failed`) with the names, a refusal before any
// name is written recorded as `failed` with the error's code, and a sealed credential moved to another connection
// refused as LK_PLATFORM_CREDENTIAL_UNREADABLE before anything is sent; a pull naming the values the platform
// withholds.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isLatchkeyError } from "@latchkey/core";
import {
  fakePlatformServer,
  platformRoutes,
  type FakePlatformServer,
} from "../../test/support/platforms-server.js";
import { startVercelDouble, type VercelDouble } from "../../test/support/platforms/vercel-double.js";
import { sharingMachine } from "../../test/support/sharing-key-server.js";
import { runCli } from "../cli.js";
import type { Context } from "../context.js";
import { pushVault } from "../sync/push.js";
import type { CapturedStream } from "../../test/support/context.js";
import { connectPlatform, pullPlatform, pushPlatform } from "./connections.js";

const VAULT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const TOKEN = "vercel-flow-token-5d1e";
const OTHER_TOKEN = "vercel-flow-other-token-8b2a";
const PROJECT = "prj_flow";

let root: string;
let n = 0;
const doubles: VercelDouble[] = [];
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-platforms-flow-"));
});
afterEach(async () => {
  await Promise.all(doubles.splice(0).map((d) => d.close()));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * A machine whose personal copy of VAULT (API_KEY, DB_URL, SESSION_SECRET) is on the fake server at version 1, a
 * Vercel double accepting `TOKEN`, and the tokens to type at the credential prompt, in order.
 */
async function setUp(
  tokens: string[],
): Promise<{ ctx: Context; fake: FakePlatformServer; vercel: VercelDouble }> {
  const dir = join(root, `project-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "web" }));
  await writeFile(join(dir, "latchkey.json"), JSON.stringify({ vault: VAULT }));
  const machine = sharingMachine(root, `m${n}`, { cwd: dir, passwords: tokens });
  const fake = fakePlatformServer();
  machine.server.extra = platformRoutes(fake);
  const vercel = await startVercelDouble({ token: TOKEN, project: PROJECT });
  doubles.push(vercel);
  // The platform's requests go to the double; the rest to the fake Latchkey server.
  const ctx: Context = {
    ...machine.ctx,
    fetch: (input, init) =>
      new Request(input, init).url.startsWith(vercel.url)
        ? globalThis.fetch(input, init)
        : machine.ctx.fetch(input, init),
  };
  for (const pair of ["API_KEY=v-api", "DB_URL=v-db", "SESSION_SECRET=v-session"])
    expect(await runCli(["env", "set", pair], ctx)).toBe(0);
  await pushVault(ctx);
  return { ctx, fake, vercel };
}

const connect = (ctx: Context, vercel: VercelDouble, name: string) =>
  connectPlatform(ctx, {
    platform: "vercel",
    environment: "default",
    name,
    targets: { project: PROJECT, target: [], baseUrl: vercel.url },
  });

describe("a push's outcome as recorded", () => {
  it("names the platform refused: partial with the names, and the counts of those written only", async () => {
    const { ctx, fake, vercel } = await setUp([TOKEN]);
    await connect(ctx, vercel, "web");
    vercel.refuseKeys.add("DB_URL");
    vercel.refuseKeys.add("SESSION_SECRET");
    const pushed = await pushPlatform(ctx, { name: "web", dryRun: false, prune: false });
    expect(pushed.outcome).toBe("partial");
    expect(pushed.result?.written).toEqual(["API_KEY"]);
    expect(pushed.result?.failed.map((f) => f.name)).toEqual(["DB_URL", "SESSION_SECRET"]);
    expect(fake.statuses).toEqual([
      {
        operation: "push",
        version: 1,
        added: 1,
        changed: 0,
        removed: 0,
        outcome: "partial",
        message: "2 names not written: DB_URL, SESSION_SECRET",
      },
    ]);
    expect(fake.connections.get(VAULT)?.[0]?.lastPush).toMatchObject({ outcome: "partial", added: 1 });

    // Every name refused: nothing written, so the push failed; the names are still said.
    vercel.refuseKeys.add("API_KEY");
    const none = await pushPlatform(ctx, { name: "web", dryRun: false, prune: false });
    expect(none.outcome).toBe("failed");
    expect(fake.statuses.at(-1)).toMatchObject({
      added: 0,
      changed: 0,
      outcome: "failed",
      message: "3 names not written: API_KEY, DB_URL, SESSION_SECRET",
    });
    expect(fake.refusals).toEqual([]);
    expect(vercel.refusals).toEqual([]);
  });

  it("a refusal before any name is written: the error, recorded as failed with its code", async () => {
    const { ctx, fake, vercel } = await setUp([TOKEN]);
    await connect(ctx, vercel, "web");
    vercel.fault({ status: 401, match: "POST " });
    const failed = await pushPlatform(ctx, { name: "web", dryRun: false, prune: false }).catch(
      (error: unknown) => error,
    );
    expect(isLatchkeyError(failed, "LK_PLATFORM_UNAUTHORIZED")).toBe(true);
    expect(fake.statuses).toHaveLength(1);
    expect(fake.statuses[0]).toMatchObject({ operation: "push", version: 1, added: 0, outcome: "failed" });
    expect(fake.statuses[0]?.message).toMatch(/^LK_PLATFORM_UNAUTHORIZED/);
    expect(fake.statuses[0]?.message).not.toContain(TOKEN);
    expect(fake.refusals).toEqual([]);
  });
});

describe("a sealed credential moved to another connection", () => {
  it("does not open there: LK_PLATFORM_CREDENTIAL_UNREADABLE, and nothing reaches the platform", async () => {
    const { ctx, fake, vercel } = await setUp([TOKEN, OTHER_TOKEN]);
    await connect(ctx, vercel, "web");
    await connect(ctx, vercel, "web-other");
    const [web, other] = fake.connections.get(VAULT)!;
    expect(web!.sealedCredential).not.toBe(other!.sealedCredential);
    // A server swapping rows would hand `web-other` the credential sealed for `web`, which the double accepts.
    other!.sealedCredential = web!.sealedCredential;
    const before = vercel.requests.length;
    const error = await pushPlatform(ctx, { name: "web-other", dryRun: false, prune: false }).catch(
      (e: unknown) => e,
    );
    expect(isLatchkeyError(error, "LK_PLATFORM_CREDENTIAL_UNREADABLE")).toBe(true);
    expect((error as Error).message).toContain(
      "The credential of connection web-other does not open with the key of",
    );
    expect((error as Error).message).toContain("Nothing was sent to vercel.");
    expect((error as Error).message).not.toContain(TOKEN);
    expect(vercel.requests.length).toBe(before);
    expect(fake.statuses).toEqual([]);

    // The connection it was sealed for still opens it.
    const pushed = await pushPlatform(ctx, { name: "web", dryRun: false, prune: false });
    expect(pushed.outcome).toBe("ok");
    expect(vercel.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(fake.refusals).toEqual([]);
  });
});

describe("connect's credential prompt", () => {
  it("an empty answer is refused with a hint connect can follow, and nothing is sent", async () => {
    const { ctx, fake, vercel } = await setUp([""]);
    const error = await connect(ctx, vercel, "web").catch((e: unknown) => e);
    expect(isLatchkeyError(error, "LK_INPUT_EMPTY")).toBe(true);
    const { message, hint } = error as { message: string; hint?: string };
    expect(message).toContain("Nothing was typed at the prompt");
    expect(message).toContain("Nothing was sent.");
    // connect has no --allow-empty: an empty platform token is never meant.
    expect(hint).not.toContain("--allow-empty");
    expect(hint).toContain("--credential-stdin");
    expect(fake.connections.get(VAULT) ?? []).toEqual([]);
  });

  it("empty standard input with --credential-stdin is refused in the same words, naming stdin", async () => {
    const { ctx, fake, vercel } = await setUp([]);
    const piped: Context = {
      ...ctx,
      stdin: { isTTY: false, readAll: () => Promise.resolve(new Uint8Array()) },
    };
    const error = await connectPlatform(piped, {
      platform: "vercel",
      environment: "default",
      targets: { project: PROJECT, target: [], baseUrl: vercel.url },
      credentialStdin: true,
    }).catch((e: unknown) => e);
    expect(isLatchkeyError(error, "LK_INPUT_EMPTY")).toBe(true);
    expect((error as Error).message).toBe(
      "Nothing arrived on standard input: there is no vercel credential to connect with. Nothing was sent.",
    );
    expect(fake.connections.get(VAULT) ?? []).toEqual([]);
  });
});

describe("a pull", () => {
  it("names the values the platform withholds in its outcome, the recorded status and the command's output", async () => {
    const { ctx, fake, vercel } = await setUp([TOKEN]);
    await connect(ctx, vercel, "web");
    vercel.entries.push(
      { id: "env_open", key: "FROM_VERCEL", value: "v-open", type: "encrypted", target: ["production"] },
      { id: "env_hidden", key: "HIDDEN", value: "v-hidden-5e1c", type: "sensitive", target: ["production"] },
    );
    const pulled = await pullPlatform(ctx, { name: "web" });
    expect(pulled).toMatchObject({ added: ["FROM_VERCEL"], changed: [], withheld: ["HIDDEN"] });
    expect(fake.statuses.at(-1)).toEqual({
      operation: "pull",
      version: 1,
      added: 1,
      changed: 0,
      removed: 0,
      outcome: "ok",
      message: "1 name not imported (vercel does not return the value): HIDDEN",
    });

    const stderr = ctx.stderr as CapturedStream;
    const before = stderr.text().length;
    expect(await runCli(["env", "platforms", "pull", "web"], ctx)).toBe(0);
    const said = stderr.text().slice(before);
    expect(said).toContain("not imported: HIDDEN (vercel does not return its value)");
    expect(said).not.toContain("v-hidden-5e1c");
    expect(fake.refusals).toEqual([]);
    expect(vercel.refusals).toEqual([]);
  });
});
