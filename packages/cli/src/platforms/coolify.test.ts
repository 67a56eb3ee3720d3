import { type CoolifyConfig } from "@latchkey/core";
import { afterEach, describe, expect, it } from "vitest";
import { startCoolifyDouble, type CoolifyDouble } from "../../test/support/platforms/coolify-double.js";
import { failure, platformContext, push } from "../../test/support/platforms/test-context.js";
import { planPush } from "./adapter.js";
import { coolifyAdapter } from "./coolify.js";

const TOKEN = "3|coolify-token-abc123";
const APP = "app0uuid0001";
let double: CoolifyDouble | undefined;

afterEach(async () => {
  await double?.close();
  double = undefined;
});

async function setup(
  options: { readSensitive?: boolean; teamless?: boolean; application?: string } = {},
  credential = TOKEN,
) {
  const { application = APP, ...doubleOptions } = options;
  double = await startCoolifyDouble({ token: TOKEN, application: APP, ...doubleOptions });
  const ctx = platformContext();
  const config: CoolifyConfig = {
    platform: "coolify",
    applicationUuid: application,
    baseUrl: double.url,
  };
  return { d: double, ctx, adapter: coolifyAdapter({ ctx, config, credential }) };
}

function production(d: CoolifyDouble) {
  return d.envs.filter((e) => !e.is_preview);
}

function seed(d: CoolifyDouble, key: string, value: string, isPreview = false) {
  d.envs.push({
    uuid: `seed-${key}-${isPreview ? "p" : "x"}`,
    key,
    value,
    is_preview: isPreview,
    is_literal: false,
    is_multiline: false,
    is_shown_once: false,
  });
}

describe("coolify adapter", () => {
  it("pushes to an empty application as literal production variables, in one bulk PATCH", async () => {
    const { d, adapter } = await setup();
    const values = { API_KEY: "pa$$word-$HOME", CERT: "line1\nline2", DB_URL: "postgres://x" };
    const { plan, result } = await push(adapter, values);
    expect(plan).toMatchObject({ added: ["API_KEY", "CERT", "DB_URL"], changed: [], removed: [] });
    expect(result).toEqual({ written: ["API_KEY", "CERT", "DB_URL"], removed: [], failed: [] });
    expect(production(d).map((e) => [e.key, e.value, e.is_literal, e.is_multiline, e.is_shown_once])).toEqual(
      [
        ["API_KEY", "pa$$word-$HOME", true, false, false],
        ["CERT", "line1\nline2", true, true, false],
        ["DB_URL", "postgres://x", true, false, false],
      ],
    );
    const patches = d.requests.filter((r) => r.method === "PATCH");
    expect(patches.map((r) => r.url)).toEqual([`/api/v1/applications/${APP}/envs/bulk`]);
    expect(JSON.parse(patches[0]!.body)).toEqual({
      data: [
        {
          key: "API_KEY",
          value: "pa$$word-$HOME",
          is_preview: false,
          is_literal: true,
          is_multiline: false,
          is_shown_once: false,
        },
        {
          key: "CERT",
          value: "line1\nline2",
          is_preview: false,
          is_literal: true,
          is_multiline: true,
          is_shown_once: false,
        },
        {
          key: "DB_URL",
          value: "postgres://x",
          is_preview: false,
          is_literal: true,
          is_multiline: false,
          is_shown_once: false,
        },
      ],
    });
    expect(d.refusals).toEqual([]);
    expect(d.requests.every((r) => !r.url.includes("coolify-token"))).toBe(true);
  });

  it("overwrites a changed value in place and lists only production names", async () => {
    const { d, adapter } = await setup();
    seed(d, "API_KEY", "old");
    seed(d, "PREVIEW_ONLY", "p", true);
    expect(await adapter.listNames()).toEqual(["API_KEY"]);
    const { plan, result } = await push(adapter, { API_KEY: "new", OTHER: "o" });
    expect(plan).toMatchObject({ added: ["OTHER"], changed: ["API_KEY"], removed: [] });
    expect(result.written).toEqual(["API_KEY", "OTHER"]);
    expect(production(d).filter((e) => e.key === "API_KEY")).toMatchObject([
      { uuid: "seed-API_KEY-x", value: "new", is_literal: true },
    ]);
    expect(d.refusals).toEqual([]);
  });

  it("takes the instance's URL with or without the API's /api/v1 suffix", async () => {
    const { d, ctx } = await setup();
    seed(d, "A", "1");
    for (const baseUrl of [d.url, `${d.url}/`, `${d.url}/api/v1`, `${d.url}/api/v1/`]) {
      const adapter = coolifyAdapter({
        ctx,
        config: { platform: "coolify", applicationUuid: APP, baseUrl },
        credential: TOKEN,
      });
      expect(await adapter.listNames()).toEqual(["A"]);
    }
    expect(d.refusals).toEqual([]);
  });

  it("plans a dry run from the names alone and writes nothing", async () => {
    const { d, adapter } = await setup();
    seed(d, "GONE", "x");
    const plan = planPush(await adapter.listNames(), { NEW: "n" }, true);
    expect(plan).toMatchObject({ added: ["NEW"], changed: [], removed: ["GONE"] });
    expect(d.requests.map((r) => r.method)).toEqual(["GET"]);
    expect(d.envs.map((e) => e.key)).toEqual(["GONE"]);
  });

  it("removes only production names absent from the vault with prune, and nothing without it", async () => {
    const { d, adapter } = await setup();
    seed(d, "KEEP", "k");
    seed(d, "GONE", "g");
    seed(d, "GONE", "preview copy", true);
    const kept = await push(adapter, { KEEP: "k2" }, false);
    expect(kept.result.removed).toEqual([]);
    expect(d.requests.filter((r) => r.method === "DELETE")).toEqual([]);
    expect(production(d).map((e) => e.key)).toEqual(["KEEP", "GONE"]);

    const pruned = await push(adapter, { KEEP: "k3" }, true);
    expect(pruned.plan.removed).toEqual(["GONE"]);
    expect(pruned.result).toEqual({ written: ["KEEP"], removed: ["GONE"], failed: [] });
    expect(d.requests.filter((r) => r.method === "DELETE").map((r) => r.url)).toEqual([
      `/api/v1/applications/${APP}/envs/seed-GONE-x`,
    ]);
    // The preview deployments' variables are not the connection's.
    expect(d.envs.map((e) => [e.key, e.is_preview])).toEqual([
      ["KEEP", false],
      ["GONE", true],
    ]);
    expect(d.refusals).toEqual([]);
  });

  it("counts a name already gone when the prune runs as removed, sending no delete for it", async () => {
    const { d, adapter } = await setup();
    const result = await adapter.apply({ upsert: {}, remove: ["NEVER_THERE"] });
    expect(result).toEqual({ written: [], removed: ["NEVER_THERE"], failed: [] });
    expect(d.requests.map((r) => r.method)).toEqual(["GET"]);
    expect(d.refusals).toEqual([]);
  });

  it("waits as a 429's Retry-After asks, then succeeds", async () => {
    const { d, ctx, adapter } = await setup();
    d.fault({ status: 429, retryAfter: "2", match: "PATCH" });
    const { result } = await push(adapter, { A: "1" });
    expect(result.written).toEqual(["A"]);
    expect(ctx.sleeps).toEqual([2000]);
    expect(d.requests.filter((r) => r.method === "PATCH")).toHaveLength(2);
    expect(production(d).map((e) => e.value)).toEqual(["1"]);
    expect(d.refusals).toEqual([]);
  });

  it("turns a 401 into LK_PLATFORM_UNAUTHORIZED without the token in the message", async () => {
    const { d, adapter } = await setup({}, "wrong-token-xyz");
    const error = await failure(adapter.listNames());
    expect(error.code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(error.hint).toMatch(/docs\/platforms\.md/);
    expect(JSON.stringify(error.toJSON())).not.toContain("wrong-token-xyz");
    expect(d.requests.map((r) => r.headers.authorization)).toEqual(["Bearer wrong-token-xyz"]);
  });

  it("turns Coolify's 400 Invalid token into LK_PLATFORM_UNAUTHORIZED, and nothing is written", async () => {
    const { d, adapter } = await setup({ teamless: true });
    const error = await failure(adapter.apply({ upsert: { A: "secret-a" }, remove: [] }));
    expect(error.code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(JSON.stringify(error.toJSON())).not.toContain(TOKEN);
    expect(JSON.stringify(error.toJSON())).not.toContain("secret-a");
    expect(d.envs).toEqual([]);
  });

  it("names the application Coolify does not know (404)", async () => {
    const { adapter } = await setup({ application: "nosuchapp" });
    const error = await failure(adapter.listNames());
    expect(error.code).toBe("LK_PLATFORM_FAILED");
    expect(error.message).toContain("no application nosuchapp");
  });

  it("pulls the production values back as pushed, skipping preview variables and naming shown-once ones withheld", async () => {
    const { d, adapter } = await setup();
    const values = { API_KEY: "pa$$word-$HOME", CERT: "line1\nline2", PLAIN: "x" };
    await push(adapter, values);
    seed(d, "PREVIEW_ONLY", "p", true);
    d.envs.push({
      uuid: "once",
      key: "ONCE",
      value: "hidden",
      is_preview: false,
      is_literal: true,
      is_multiline: false,
      is_shown_once: true,
    });
    expect(await adapter.pull!()).toEqual({ values, withheld: ["ONCE"] });
    expect(d.refusals).toEqual([]);
  });

  it("says the token lacks read:sensitive when Coolify withholds the values", async () => {
    const { d, adapter } = await setup({ readSensitive: false });
    seed(d, "A", "value-a");
    const error = await failure(adapter.pull!());
    expect(error.code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(error.message).toContain("read:sensitive");
    expect(JSON.stringify(error.toJSON())).not.toContain("value-a");
  });

  it("reports exactly the names written when Coolify refuses one in the middle of a batch", async () => {
    const { d, adapter } = await setup();
    d.refuseKeys.add("B");
    const { result } = await push(adapter, { A: "1", B: "2", C: "3" });
    expect(result.written).toEqual(["A", "C"]);
    expect(result.failed).toEqual([{ name: "B", reason: "refused (HTTP 422: key)" }]);
    expect(production(d).map((e) => e.key)).toEqual(["A", "C"]);
    // The batch, then each name alone: Coolify's 422 does not say which item it refused.
    expect(d.requests.filter((r) => r.method === "PATCH").map((r) => JSON.parse(r.body).data.length)).toEqual(
      [3, 1, 1, 1],
    );
    expect(d.refusals).toEqual([]);
  });

  it("the double refuses a request outside the documented shape", async () => {
    const { d } = await setup();
    const url = `${d.url}/api/v1/applications/${APP}/envs/bulk`;
    const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    const extra = await fetch(url, {
      method: "PATCH",
      headers: auth,
      body: JSON.stringify({ data: [{ key: "A", value: "1", is_secret: true }] }),
    });
    expect(extra.status).toBe(400);
    const form = await fetch(url, {
      method: "PATCH",
      headers: { ...auth, "content-type": "application/x-www-form-urlencoded" },
      body: "key=A&value=1",
    });
    expect(form.status).toBe(400);
    const bare = await fetch(url, {
      method: "PATCH",
      headers: auth,
      body: JSON.stringify([{ key: "A", value: "1" }]),
    });
    expect(bare.status).toBe(400);
    const wrongAuth = await fetch(url, {
      method: "PATCH",
      headers: { ...auth, authorization: `Token ${TOKEN}` },
      body: JSON.stringify({ data: [{ key: "A", value: "1" }] }),
    });
    expect(wrongAuth.status).toBe(401);
    expect(await wrongAuth.json()).toEqual({ message: "Unauthenticated." });
    expect(d.refusals).toEqual([
      `PATCH /api/v1/applications/${APP}/envs/bulk: unknown member is_secret`,
      `PATCH /api/v1/applications/${APP}/envs/bulk: content-type must be application/json`,
      `PATCH /api/v1/applications/${APP}/envs/bulk: the body is {"data": [...]} only`,
    ]);
    expect(d.envs).toEqual([]);
  });
});
