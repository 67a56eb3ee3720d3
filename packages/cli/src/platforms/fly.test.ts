import { LatchkeyError } from "@latchkey/core";
import { afterEach, describe, expect, it } from "vitest";
import { startFlyDouble, type FlyDouble } from "../../test/support/platforms/fly-double.js";
import { platformContext, push } from "../../test/support/platforms/test-context.js";
import { planPush } from "./adapter.js";
import { flyAdapter } from "./fly.js";

const TOKEN = "FlyV1 fm2_token";
let double: FlyDouble | undefined;

afterEach(async () => {
  await double?.close();
  double = undefined;
});

async function setup(credential = TOKEN) {
  double = await startFlyDouble({ token: TOKEN, app: "my-app" });
  const ctx = platformContext();
  const adapter = flyAdapter({
    ctx,
    config: { platform: "fly", app: "my-app", baseUrl: double.url },
    credential,
  });
  return { d: double, ctx, adapter };
}

describe("fly adapter", () => {
  it("pushes to an empty app in one bulk update", async () => {
    const { d, adapter } = await setup();
    const { plan, result } = await push(adapter, { A: "1", B: "2" });
    expect(plan).toMatchObject({ added: ["A", "B"], changed: [] });
    expect(result).toEqual({ written: ["A", "B"], removed: [], failed: [] });
    expect(Object.fromEntries(d.secrets)).toEqual({ A: "1", B: "2" });
    expect(d.requests.filter((r) => r.method === "POST")).toHaveLength(1);
    expect(d.refusals).toEqual([]);
  });

  it("overwrites a changed value", async () => {
    const { d, adapter } = await setup();
    d.secrets.set("A", "old");
    const { plan } = await push(adapter, { A: "new" });
    expect(plan.changed).toEqual(["A"]);
    expect(d.secrets.get("A")).toBe("new");
  });

  it("plans a dry run without writing", async () => {
    const { d, adapter } = await setup();
    d.secrets.set("OLD", "x");
    expect(planPush(await adapter.listNames(), { NEW: "n" }, true)).toMatchObject({
      added: ["NEW"],
      removed: ["OLD"],
    });
    expect(d.requests.map((r) => r.method)).toEqual(["GET"]);
  });

  it("deletes only absent names with prune (null values), nothing without", async () => {
    const { d, adapter } = await setup();
    d.secrets.set("KEEP", "k");
    d.secrets.set("GONE", "g");
    await push(adapter, { KEEP: "k2" }, false);
    expect([...d.secrets.keys()].sort()).toEqual(["GONE", "KEEP"]);
    const { result } = await push(adapter, { KEEP: "k3" }, true);
    expect(result).toEqual({ written: ["KEEP"], removed: ["GONE"], failed: [] });
    expect(Object.fromEntries(d.secrets)).toEqual({ KEEP: "k3" });
    expect(JSON.parse(d.requests.at(-1)!.body)).toEqual({ values: { KEEP: "k3", GONE: null } });
  });

  it("retries after a 429 with the backoff when no Retry-After is given, and after a 503", async () => {
    const { d, ctx, adapter } = await setup();
    d.fault({ status: 429, match: "POST" }, { status: 503, match: "POST" });
    const { result } = await push(adapter, { A: "1" });
    expect(result.written).toEqual(["A"]);
    expect(ctx.sleeps).toHaveLength(2);
    expect(ctx.sleeps[1]!).toBeGreaterThan(ctx.sleeps[0]!);
  });

  it("stops with LK_PLATFORM_RATE_LIMITED when the 429s do not end", async () => {
    const { d, adapter } = await setup();
    d.fault(...Array.from({ length: 4 }, () => ({ status: 429, retryAfter: "1" })));
    await expect(adapter.listNames()).rejects.toMatchObject({ code: "LK_PLATFORM_RATE_LIMITED" });
  });

  it("turns a 401 into LK_PLATFORM_UNAUTHORIZED", async () => {
    const { adapter } = await setup("FlyV1 wrong");
    const error: unknown = await adapter.apply({ upsert: { A: "1" }, remove: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LatchkeyError);
    expect((error as LatchkeyError).code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect((error as LatchkeyError).message).not.toContain("wrong");
  });

  it("has no pull: Fly keeps values write-only", async () => {
    const { adapter } = await setup();
    expect(adapter.pull).toBeNull();
  });

  it("reports every name failed when the bulk update is refused, and none written", async () => {
    const { d, adapter } = await setup();
    d.refuseNames.add("B");
    const { result } = await push(adapter, { A: "1", B: "2" });
    expect(result).toEqual({
      written: [],
      removed: [],
      failed: [
        { name: "A", reason: "HTTP 422" },
        { name: "B", reason: "HTTP 422" },
      ],
    });
    expect(d.secrets.size).toBe(0);
  });
});
