import {
  PLATFORMS,
  checkSchema,
  platformConfigSchema,
  type PlatformConfig,
  type PlatformName,
} from "@latchkey/core";
import { describe, expect, it } from "vitest";
import { startDouble } from "../../test/support/platforms/double.js";
import { platformContext } from "../../test/support/platforms/test-context.js";
import { applyPlanFor, planPush, platformRequest, retryAfterMs } from "./adapter.js";
import { createPlatformAdapter } from "./registry.js";

describe("planPush", () => {
  const values = { A: "1", B: "2" };

  it("adds absent names, changes present ones and removes nothing without prune", () => {
    expect(planPush(["B", "OLD"], values, false)).toEqual({
      added: ["A"],
      changed: ["B"],
      removed: [],
      listed: true,
    });
  });

  it("removes exactly the platform's names the vault lacks with prune", () => {
    expect(planPush(["B", "OLD", "ZZ"], values, true).removed).toEqual(["OLD", "ZZ"]);
  });

  it("cannot prune a target whose names are unknown", () => {
    expect(planPush(null, values, true)).toEqual({
      added: ["A", "B"],
      changed: [],
      removed: [],
      listed: false,
    });
  });

  it("writes every vault value and removes the plan's names", () => {
    const plan = planPush(["B", "OLD"], values, true);
    expect(applyPlanFor(plan, values)).toEqual({ upsert: { A: "1", B: "2" }, remove: ["OLD"] });
  });
});

describe("retryAfterMs", () => {
  const now = Date.parse("2026-12-07T12:00:00Z");
  it("reads seconds and HTTP dates, and nothing else", () => {
    expect(retryAfterMs("7", now)).toBe(7000);
    expect(retryAfterMs("Mon, 07 Dec 2026 12:00:30 GMT", now)).toBe(30_000);
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs(null, now)).toBeNull();
  });
});

describe("platform configurations", () => {
  it("refuse plain http off loopback, credentials in a URL and unknown members", () => {
    const bad = [
      { platform: "generic", url: "http://example.com/hook" },
      { platform: "generic", url: "https://user:pass@example.com/hook" },
      { platform: "fly", app: "a", token: "x" },
      { platform: "vercel", projectId: "p", target: [], type: "encrypted" },
    ];
    for (const config of bad) expect(checkSchema(platformConfigSchema, config).ok).toBe(false);
    expect(
      checkSchema(platformConfigSchema, { platform: "generic", url: "http://127.0.0.1:8080/h" }).ok,
    ).toBe(true);
  });

  it("has an adapter for every platform", () => {
    const ctx = platformContext();
    const configs = {
      vercel: { platform: "vercel", projectId: "p", target: ["production"], type: "encrypted" },
      fly: { platform: "fly", app: "a" },
      railway: { platform: "railway", projectId: "p", environmentId: "e", tokenType: "account" },
      coolify: { platform: "coolify", applicationUuid: "u" },
      "github-actions": { platform: "github-actions", owner: "o", repo: "r" },
      "aws-ssm": { platform: "aws-ssm", region: "eu-west-1", path: "/acme/web/" },
      "aws-sm": { platform: "aws-sm", region: "eu-west-1", secretId: "acme/web/production" },
      generic: { platform: "generic", url: "https://example.com/h" },
    } satisfies Record<PlatformName, PlatformConfig>;
    for (const platform of PLATFORMS)
      expect(createPlatformAdapter({ ctx, config: configs[platform], credential: "t" }).platform).toBe(
        platform,
      );
  });
});

describe("platformRequest", () => {
  it("retries an answer its throttled predicate recognises in the same loop, and returns it readable otherwise", async () => {
    const throttle = { status: 400, body: { __type: "ThrottlingException" } };
    const answers = [throttle, throttle, { status: 200, body: { ok: true } }];
    const d = await startDouble(() => answers.shift()!);
    try {
      const ctx = platformContext();
      const throttled = async (r: Response) =>
        r.status === 400 &&
        ((await r.clone().json()) as { __type?: string }).__type === "ThrottlingException";
      const response = await platformRequest(ctx, 0, { platform: "aws-ssm", url: d.url, throttled });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ ok: true });
      expect(ctx.sleeps).toHaveLength(2);
      expect(d.requests).toHaveLength(3);

      // A 400 that is not throttling comes back at once, its body still readable.
      answers.push({ status: 400, body: { __type: "ValidationException" } });
      const refused = await platformRequest(ctx, 0, { platform: "aws-ssm", url: d.url, throttled });
      expect(refused.status).toBe(400);
      expect(await refused.json()).toEqual({ __type: "ValidationException" });
      expect(ctx.sleeps).toHaveLength(2);

      // Without the predicate a 400 is an answer like any other.
      answers.push(throttle);
      expect((await platformRequest(ctx, 0, { platform: "aws-ssm", url: d.url })).status).toBe(400);
      expect(ctx.sleeps).toHaveLength(2);
    } finally {
      await d.close();
    }
  });
});
