import { LatchkeyError } from "@latchkey/core";
import { afterEach, describe, expect, it } from "vitest";
import { startGenericReceiver, type GenericReceiver } from "../../test/support/platforms/generic-receiver.js";
import { platformContext, push } from "../../test/support/platforms/test-context.js";
import { planPush } from "./adapter.js";
import { genericAdapter } from "./generic.js";

const SECRET = "whsec_generic_secret";
const NOW = Date.parse("2026-12-07T12:00:00Z");
let receiver: GenericReceiver | undefined;

afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

async function setup(options: { secret?: string; clientNow?: number } = {}) {
  receiver = await startGenericReceiver({ secret: SECRET, now: () => NOW });
  const ctx = platformContext(options.clientNow ?? NOW);
  const adapter = genericAdapter({
    ctx,
    config: { platform: "generic", url: `${receiver.url}/hooks/latchkey` },
    credential: options.secret ?? SECRET,
  });
  return { r: receiver, ctx, adapter };
}

describe("generic adapter", () => {
  it("posts one signed document the receiver verifies and applies", async () => {
    const { r, adapter } = await setup();
    const { plan, result } = await push(adapter, { A: "1", B: "2" });
    expect(plan).toMatchObject({ added: ["A", "B"], listed: false });
    expect(result).toEqual({ written: ["A", "B"], removed: [], failed: [] });
    expect(Object.fromEntries(r.state)).toEqual({ A: "1", B: "2" });
    expect(r.refusals).toEqual([]);
    expect(r.rejected).toEqual([]);
    expect(r.requests[0]!.headers["x-latchkey-signature"]).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(JSON.stringify(r.requests[0]!.headers)).not.toContain(SECRET);
  });

  it("sends a changed value again", async () => {
    const { r, adapter } = await setup();
    await push(adapter, { A: "1" });
    await push(adapter, { A: "2" });
    expect(r.state.get("A")).toBe("2");
  });

  it("lists no names, so a dry run sends nothing and prune removes nothing", async () => {
    const { r, adapter } = await setup();
    const plan = planPush(await adapter.listNames(), { A: "1" }, true);
    expect(plan).toEqual({ added: ["A"], changed: [], removed: [], listed: false });
    expect(r.requests).toEqual([]);
  });

  it("is refused with a wrong secret: LK_PLATFORM_UNAUTHORIZED", async () => {
    const { r, adapter } = await setup({ secret: "another-secret" });
    const error: unknown = await adapter.apply({ upsert: { A: "1" }, remove: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LatchkeyError);
    expect((error as LatchkeyError).code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(r.rejected).toEqual(["bad signature"]);
    expect(r.state.size).toBe(0);
  });

  it("is refused when its clock is outside the receiver's window", async () => {
    const { r, adapter } = await setup({ clientNow: NOW - 10 * 60 * 1000 });
    await expect(adapter.apply({ upsert: { A: "1" }, remove: [] })).rejects.toMatchObject({
      code: "LK_PLATFORM_UNAUTHORIZED",
    });
    expect(r.rejected).toEqual(["timestamp outside the window"]);
  });

  it("a replayed delivery is refused by the receiver", async () => {
    const { r, adapter } = await setup();
    await push(adapter, { A: "1" });
    const sent = r.requests[0]!;
    const replay = await fetch(`${r.url}/hooks/latchkey`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-latchkey-timestamp": String(sent.headers["x-latchkey-timestamp"]),
        "x-latchkey-signature": String(sent.headers["x-latchkey-signature"]),
      },
      body: sent.body,
    });
    expect(replay.status).toBe(401);
    expect(r.rejected).toEqual(["replayed id"]);
  });

  it("waits as a 429's Retry-After asks, then succeeds with a delivery the receiver accepts", async () => {
    const { r, ctx, adapter } = await setup();
    r.fault({ status: 429, retryAfter: "2" });
    const { result } = await push(adapter, { A: "1" });
    expect(result).toEqual({ written: ["A"], removed: [], failed: [] });
    expect(ctx.sleeps).toEqual([2000]);
    expect(r.rejected).toEqual([]);
  });

  it("retries a 503 then succeeds", async () => {
    const { r, ctx, adapter } = await setup();
    r.fault({ status: 503, retryAfter: "1" });
    const { result } = await push(adapter, { A: "1" });
    expect(result.written).toEqual(["A"]);
    expect(ctx.sleeps).toEqual([1000]);
  });

  it("reports every name failed when the receiver refuses the document", async () => {
    const { r, adapter } = await setup();
    r.fault({ status: 422 });
    const { result } = await push(adapter, { A: "1", B: "2" });
    expect(result).toEqual({
      written: [],
      removed: [],
      failed: [
        { name: "A", reason: "HTTP 422" },
        { name: "B", reason: "HTTP 422" },
      ],
    });
  });

  it("has no pull", async () => {
    const { adapter } = await setup();
    expect(adapter.pull).toBeNull();
  });
});
