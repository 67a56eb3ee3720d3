import { isUuid, type AwsSmConfig } from "@latchkey/core";
import { afterEach, describe, expect, it } from "vitest";
import { startAwsDouble, type AwsDouble } from "../../test/support/platforms/aws-double.js";
import { signedJsonHeaders } from "../../test/support/platforms/sigv4.js";
import { failure, platformContext, push } from "../../test/support/platforms/test-context.js";
import { applyPlanFor, planPush } from "./adapter.js";
import { awsSmAdapter } from "./aws-sm.js";

const KEY_ID = "AKIAIOSFODNN7EXAMPLE";
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const CREDENTIAL = `${KEY_ID}:${SECRET}`;
const NOW = Date.parse("2026-12-07T12:00:00Z");
const NAME = "acme/web/production";
let double: AwsDouble | undefined;

afterEach(async () => {
  await double?.close();
  double = undefined;
});

async function setup(options: { credential?: string; config?: Partial<AwsSmConfig> } = {}) {
  double = await startAwsDouble({ keys: { [KEY_ID]: SECRET }, region: "eu-west-1", now: () => NOW });
  const ctx = platformContext(NOW);
  const config: AwsSmConfig = {
    platform: "aws-sm",
    region: "eu-west-1",
    secretId: NAME,
    baseUrl: double.url,
    ...options.config,
  };
  const adapter = awsSmAdapter({ ctx, config, credential: options.credential ?? CREDENTIAL });
  return { d: double, ctx, adapter };
}

function seed(d: AwsDouble, values: unknown, text = JSON.stringify(values)): void {
  d.secrets.set(NAME, { secretString: text, versionId: "v0", tokens: new Map(), versions: 1 });
}

function held(d: AwsDouble): unknown {
  return JSON.parse(d.secrets.get(NAME)!.secretString);
}

function bodies(d: AwsDouble, target: string): Record<string, unknown>[] {
  return d.requests
    .filter((r) => r.headers["x-amz-target"] === target)
    .map((r) => JSON.parse(r.body) as Record<string, unknown>);
}

describe("aws-sm adapter", () => {
  it("creates the secret on the first push: one JSON object of every variable", async () => {
    const { d, adapter } = await setup();
    const { plan, result } = await push(adapter, { API_KEY: "s3cret-1", DB_URL: "postgres://x" });
    expect(plan).toMatchObject({ added: ["API_KEY", "DB_URL"], changed: [], removed: [] });
    expect(result).toEqual({ written: ["API_KEY", "DB_URL"], removed: [], failed: [] });
    expect(held(d)).toEqual({ API_KEY: "s3cret-1", DB_URL: "postgres://x" });
    const [create] = bodies(d, "secretsmanager.CreateSecret");
    expect(Object.keys(create!).sort()).toEqual(["ClientRequestToken", "Name", "SecretString"]);
    expect(create!.Name).toBe(NAME);
    expect(isUuid(String(create!.ClientRequestToken))).toBe(true);
    expect(d.targets()).toEqual([
      "secretsmanager.GetSecretValue",
      "secretsmanager.GetSecretValue",
      "secretsmanager.CreateSecret",
    ]);
    expect(d.refusals).toEqual([]);
  });

  it("creates the secret with the connection's KMS key when it names one", async () => {
    const { d, adapter } = await setup({ config: { kmsKeyId: "alias/latchkey" } });
    await push(adapter, { A: "1" });
    expect(d.secrets.get(NAME)?.kmsKeyId).toBe("alias/latchkey");
    expect(d.refusals).toEqual([]);
  });

  it("writes a change as a new version, keeping names the vault does not have, with a fresh token each push", async () => {
    const { d, adapter } = await setup();
    seed(d, { API_KEY: "old", THEIRS: "t" });
    const first = await push(adapter, { API_KEY: "new", OTHER: "o" });
    expect(first.plan).toMatchObject({ added: ["OTHER"], changed: ["API_KEY"], removed: [] });
    expect(first.result).toEqual({ written: ["API_KEY", "OTHER"], removed: [], failed: [] });
    expect(held(d)).toEqual({ API_KEY: "new", OTHER: "o", THEIRS: "t" });
    const second = await push(adapter, { API_KEY: "newer" });
    expect(second.result.written).toEqual(["API_KEY"]);
    expect(held(d)).toEqual({ API_KEY: "newer", OTHER: "o", THEIRS: "t" });
    expect(d.secrets.get(NAME)!.versions).toBe(3);
    const tokens = bodies(d, "secretsmanager.PutSecretValue").map((b) => b.ClientRequestToken);
    expect(new Set(tokens).size).toBe(2);
    expect(d.targets()).not.toContain("secretsmanager.CreateSecret");
    expect(d.refusals).toEqual([]);
  });

  it("plans a dry run from the names alone and writes nothing", async () => {
    const { d, adapter } = await setup();
    seed(d, { GONE: "x" });
    const plan = planPush(await adapter.listNames(), { NEW: "n" }, true);
    expect(plan).toMatchObject({ added: ["NEW"], changed: [], removed: ["GONE"] });
    expect(d.targets()).toEqual(["secretsmanager.GetSecretValue"]);
    expect(held(d)).toEqual({ GONE: "x" });
  });

  it("drops exactly the names absent from the vault with prune, and none without it", async () => {
    const { d, adapter } = await setup();
    seed(d, { KEEP: "k", GONE: "g", ALSO_GONE: "a" });
    const kept = await push(adapter, { KEEP: "k2" }, false);
    expect(kept.result.removed).toEqual([]);
    expect(held(d)).toEqual({ KEEP: "k2", GONE: "g", ALSO_GONE: "a" });

    const pruned = await push(adapter, { KEEP: "k3" }, true);
    expect(pruned.plan.removed).toEqual(["ALSO_GONE", "GONE"]);
    expect(pruned.result).toEqual({ written: ["KEEP"], removed: ["ALSO_GONE", "GONE"], failed: [] });
    expect(held(d)).toEqual({ KEEP: "k3" });
    expect(d.refusals).toEqual([]);
  });

  it("counts a name already gone from the secret when the push applies as removed", async () => {
    const { d, adapter } = await setup();
    seed(d, { KEEP: "k", GONE: "g", ALSO_GONE: "a" });
    const plan = planPush(await adapter.listNames(), { KEEP: "k2" }, true);
    expect(plan.removed).toEqual(["ALSO_GONE", "GONE"]);
    // Someone (or an earlier attempt of this push) dropped GONE between the listing and the write.
    seed(d, { KEEP: "k", ALSO_GONE: "a" });
    const result = await adapter.apply(applyPlanFor(plan, { KEEP: "k2" }));
    expect(result).toEqual({ written: ["KEEP"], removed: ["ALSO_GONE", "GONE"], failed: [] });
    expect(held(d)).toEqual({ KEEP: "k2" });

    // Only names already gone: the target is as asked, and nothing is written.
    d.requests.length = 0;
    expect(await adapter.apply({ upsert: {}, remove: ["GONE"] })).toEqual({
      written: [],
      removed: ["GONE"],
      failed: [],
    });
    expect(d.targets()).toEqual(["secretsmanager.GetSecretValue"]);
    expect(d.refusals).toEqual([]);
  });

  it("waits as a 429's Retry-After asks, then succeeds", async () => {
    const { d, ctx, adapter } = await setup();
    seed(d, {});
    await adapter.listNames();
    d.fault({ status: 429, retryAfter: "2" });
    const result = await adapter.apply({ upsert: { A: "1" }, remove: [] });
    expect(result.written).toEqual(["A"]);
    expect(ctx.sleeps).toEqual([2000]);
    expect(held(d)).toEqual({ A: "1" });
  });

  it("retries a write whose answer was lost (a 500 after it took effect) as the same signed request: one version, the names written", async () => {
    const { d, ctx, adapter } = await setup();
    const sent = (target: string) => d.requests.filter((r) => r.headers["x-amz-target"] === target);

    d.failAfterApply("secretsmanager.CreateSecret");
    const created = await push(adapter, { A: "1" });
    expect(created.result).toEqual({ written: ["A"], removed: [], failed: [] });
    const creates = sent("secretsmanager.CreateSecret");
    expect(creates).toHaveLength(2);
    // The retry is the same request, signature and token included: AWS ignores it and answers success.
    expect(creates[1]!.body).toBe(creates[0]!.body);
    expect(creates[1]!.headers.authorization).toBe(creates[0]!.headers.authorization);
    expect(d.secrets.get(NAME)!.versions).toBe(1);

    d.failAfterApply("secretsmanager.PutSecretValue");
    const changed = await push(adapter, { A: "2", B: "b" });
    expect(changed.result).toEqual({ written: ["A", "B"], removed: [], failed: [] });
    const puts = sent("secretsmanager.PutSecretValue");
    expect(puts).toHaveLength(2);
    expect(puts[1]!.body).toBe(puts[0]!.body);
    expect(d.secrets.get(NAME)!.versions).toBe(2);
    expect(d.secrets.get(NAME)!.versionId).toBe(
      (JSON.parse(puts[0]!.body) as { ClientRequestToken: string }).ClientRequestToken,
    );
    expect(held(d)).toEqual({ A: "2", B: "b" });
    expect(ctx.sleeps).toHaveLength(2);
    expect(d.refusals).toEqual([]);
  });

  it("retries a ThrottlingException (HTTP 400) in the one retry loop, then succeeds", async () => {
    const { d, ctx, adapter } = await setup();
    seed(d, { A: "0" });
    d.failNext("secretsmanager.PutSecretValue");
    const { result } = await push(adapter, { A: "1" });
    expect(result.written).toEqual(["A"]);
    expect(ctx.sleeps).toHaveLength(1);
    expect(d.targets().filter((t) => t === "secretsmanager.PutSecretValue")).toHaveLength(2);
    expect(held(d)).toEqual({ A: "1" });
  });

  it("turns an unknown access key into LK_PLATFORM_UNAUTHORIZED without the key", async () => {
    const { adapter } = await setup({ credential: `AKIAWRONGWRONGWRONG1:${SECRET}` });
    const error = await failure(adapter.listNames());
    expect(error.code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(error.message).toContain("UnrecognizedClientException");
    expect(JSON.stringify(error.toJSON())).not.toMatch(/AKIAWRONG|wJalr/);
  });

  it("turns a wrong secret key into LK_PLATFORM_UNAUTHORIZED, even on the write", async () => {
    const { d, adapter } = await setup();
    seed(d, { A: "0" });
    d.revokeAfter("secretsmanager.GetSecretValue", 1);
    const error = await failure(adapter.apply({ upsert: { A: "1" }, remove: [] }));
    expect(error.code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(held(d)).toEqual({ A: "0" });
  });

  it("pulls the secret's variables, and nothing from an absent secret", async () => {
    const { d, adapter } = await setup();
    expect(await adapter.pull!()).toEqual({ values: {}, withheld: [] });
    seed(d, { A: "va", B: "line 1\nline 2" });
    expect(await adapter.pull!()).toEqual({ values: { A: "va", B: "line 1\nline 2" }, withheld: [] });
    expect(d.refusals).toEqual([]);
  });

  it("reports every name failed and none written when AWS refuses the write: one version holds them all", async () => {
    const { d, adapter } = await setup();
    seed(d, { A: "0", GONE: "g" });
    d.failNext("secretsmanager.PutSecretValue", "LimitExceededException");
    const { result } = await push(adapter, { A: "1", B: "2" }, true);
    expect(result.written).toEqual([]);
    expect(result.removed).toEqual([]);
    expect(result.failed.map((f) => f.name)).toEqual(["A", "B", "GONE"]);
    expect(result.failed[0]!.reason).toMatch(/^LK_PLATFORM_FAILED: .*LimitExceededException/);
    expect(held(d)).toEqual({ A: "0", GONE: "g" });
    expect(d.refusals).toEqual([]);
  });

  it("neither reads nor overwrites a secret that is not a JSON object of strings, and never quotes it", async () => {
    for (const text of ["plain-text-s3cret", '["s3cret"]', '{"A": 1, "B": "s3cret"}']) {
      const { d, adapter } = await setup();
      seed(d, null, text);
      const error = await failure(adapter.apply({ upsert: { A: "1" }, remove: [] }));
      expect(error.code).toBe("LK_PLATFORM_FAILED");
      expect(JSON.stringify(error.toJSON())).not.toContain("s3cret");
      expect(d.secrets.get(NAME)!.secretString).toBe(text);
      expect(d.targets()).toEqual(["secretsmanager.GetSecretValue"]);
      await d.close();
      double = undefined;
    }
  });

  it("sends nothing when the secret would exceed 64 KiB", async () => {
    const { d, adapter } = await setup();
    const result = await adapter.apply({ upsert: { BIG: "x".repeat(70_000) }, remove: [] });
    expect(result.written).toEqual([]);
    expect(result.failed).toEqual([{ name: "BIG", reason: expect.stringMatching(/65536 bytes/) as string }]);
    expect(d.targets()).toEqual(["secretsmanager.GetSecretValue"]);
  });

  it("has a double that refuses a request of the wrong shape, or signed for another service", async () => {
    const { d } = await setup();
    const send = async (target: string, body: unknown, service = "secretsmanager") => {
      const text = JSON.stringify(body);
      const headers = signedJsonHeaders({
        url: d.url,
        target,
        body: text,
        keyId: KEY_ID,
        secret: SECRET,
        region: "eu-west-1",
        service,
        now: NOW,
      });
      const response = await fetch(d.url, { method: "POST", headers, body: text });
      return { status: response.status, type: ((await response.json()) as { __type?: string }).__type };
    };
    expect(await send("secretsmanager.GetSecretValue", { SecretId: NAME })).toEqual({
      status: 400,
      type: "ResourceNotFoundException",
    });
    expect(d.refusals).toEqual([]);
    expect(await send("secretsmanager.GetSecretValue", { SecretId: NAME }, "ssm")).toEqual({
      status: 400,
      type: "InvalidSignatureException",
    });
    await send("secretsmanager.CreateSecret", { Name: NAME, SecretString: "{}", Value: "x" });
    await send("secretsmanager.PutSecretValue", { SecretString: "{}" });
    await send("secretsmanager.CreateSecret", {
      Name: NAME,
      SecretString: "{}",
      ClientRequestToken: "short",
    });
    expect(d.refusals).toEqual([
      "secretsmanager.CreateSecret: secretsmanager.CreateSecret has no member Value",
      "secretsmanager.PutSecretValue: secretsmanager.PutSecretValue: SecretId is required",
      "secretsmanager.CreateSecret: ClientRequestToken must be 32 to 64 letters, digits or hyphens",
    ]);
    expect(d.secrets.size).toBe(0);
  });
});
