import { type AwsSsmConfig } from "@latchkey/core";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startAwsDouble, type AwsDouble } from "../../test/support/platforms/aws-double.js";
import { signedJsonHeaders } from "../../test/support/platforms/sigv4.js";
import { failure, platformContext, push } from "../../test/support/platforms/test-context.js";
import { planPush } from "./adapter.js";
import { awsSsmAdapter } from "./aws-ssm.js";

const KEY_ID = "AKIAIOSFODNN7EXAMPLE";
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const CREDENTIAL = `${KEY_ID}:${SECRET}`;
const NOW = Date.parse("2026-12-07T12:00:00Z");
const PATH = "/acme/web/production/";
let double: AwsDouble | undefined;

afterEach(async () => {
  vi.unstubAllEnvs();
  await double?.close();
  double = undefined;
});

async function setup(
  options: { credential?: string; config?: Partial<AwsSsmConfig>; pageSize?: number } = {},
) {
  double = await startAwsDouble({
    keys: { [KEY_ID]: SECRET },
    region: "eu-west-1",
    now: () => NOW,
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
  });
  const ctx = platformContext(NOW);
  const config: AwsSsmConfig = {
    platform: "aws-ssm",
    region: "eu-west-1",
    path: PATH,
    baseUrl: double.url,
    ...options.config,
  };
  const adapter = awsSsmAdapter({ ctx, config, credential: options.credential ?? CREDENTIAL });
  return { d: double, ctx, adapter };
}

function seed(d: AwsDouble, values: Record<string, string>): void {
  for (const [name, value] of Object.entries(values))
    d.parameters.set(name, { value, type: "SecureString", version: 1 });
}

function bodies(d: AwsDouble, target: string): unknown[] {
  return d.requests
    .filter((r) => r.headers["x-amz-target"] === target)
    .map((r) => JSON.parse(r.body) as unknown);
}

describe("aws-ssm adapter", () => {
  it("pushes to an empty path: one signed SecureString PutParameter per name, overwriting", async () => {
    const { d, adapter } = await setup();
    const { plan, result } = await push(adapter, { API_KEY: "s3cret-1", DB_URL: "postgres://x" });
    expect(plan).toMatchObject({ added: ["API_KEY", "DB_URL"], changed: [], removed: [] });
    expect(result).toEqual({ written: ["API_KEY", "DB_URL"], removed: [], failed: [] });
    expect(Object.fromEntries(d.parameters)).toEqual({
      "/acme/web/production/API_KEY": { value: "s3cret-1", type: "SecureString", version: 1 },
      "/acme/web/production/DB_URL": { value: "postgres://x", type: "SecureString", version: 1 },
    });
    expect(bodies(d, "AmazonSSM.GetParametersByPath")).toEqual([
      { Path: PATH, Recursive: false, WithDecryption: false, MaxResults: 10 },
    ]);
    expect(bodies(d, "AmazonSSM.PutParameter")).toContainEqual({
      Name: "/acme/web/production/API_KEY",
      Value: "s3cret-1",
      Type: "SecureString",
      Overwrite: true,
    });
    expect(d.refusals).toEqual([]);
    // Signed with the connection's key, never carrying its secret; no SDK user agent or machine details.
    for (const r of d.requests) {
      expect(r.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/20261207\//,
      );
      expect(JSON.stringify(r.headers)).not.toContain(SECRET);
      expect(r.headers["x-amz-user-agent"]).toBeUndefined();
    }
  });

  it("writes with the connection's KMS key when it names one", async () => {
    const { d, adapter } = await setup({ config: { kmsKeyId: "alias/latchkey" } });
    await push(adapter, { A: "1" });
    expect(d.parameters.get(`${PATH}A`)).toEqual({
      value: "1",
      type: "SecureString",
      keyId: "alias/latchkey",
      version: 1,
    });
  });

  it("overwrites a changed value and lists only the parameters directly under the path", async () => {
    const { d, adapter } = await setup();
    seed(d, { [`${PATH}API_KEY`]: "old", [`${PATH}nested/DEEP`]: "d", "/acme/web/staging/X": "x" });
    const { plan, result } = await push(adapter, { API_KEY: "new", OTHER: "o" });
    expect(plan).toMatchObject({ added: ["OTHER"], changed: ["API_KEY"] });
    expect(result.written).toEqual(["API_KEY", "OTHER"]);
    expect(d.parameters.get(`${PATH}API_KEY`)).toMatchObject({ value: "new", version: 2 });
    expect(d.parameters.get(`${PATH}nested/DEEP`)?.value).toBe("d");
    expect(d.refusals).toEqual([]);
  });

  it("follows NextToken through every page", async () => {
    const { d, adapter } = await setup({ pageSize: 2 });
    seed(d, Object.fromEntries(["A", "B", "C", "D", "E"].map((n) => [`${PATH}${n}`, n.toLowerCase()])));
    expect(await adapter.listNames()).toEqual(["A", "B", "C", "D", "E"]);
    expect(bodies(d, "AmazonSSM.GetParametersByPath")).toHaveLength(3);
    expect((await adapter.pull!()).values).toEqual({ A: "a", B: "b", C: "c", D: "d", E: "e" });
    expect(d.refusals).toEqual([]);
  });

  it("plans a dry run from the names alone and writes nothing", async () => {
    const { d, adapter } = await setup();
    seed(d, { [`${PATH}GONE`]: "x" });
    const plan = planPush(await adapter.listNames(), { NEW: "n" }, true);
    expect(plan).toMatchObject({ added: ["NEW"], changed: [], removed: ["GONE"] });
    expect(d.targets()).toEqual(["AmazonSSM.GetParametersByPath"]);
    expect([...d.parameters.keys()]).toEqual([`${PATH}GONE`]);
  });

  it("removes exactly the absent names with prune, in batches of 10, and nothing without it", async () => {
    const { d, adapter } = await setup();
    const gone = Array.from({ length: 12 }, (_, i) => `GONE_${String(i).padStart(2, "0")}`);
    seed(d, { [`${PATH}KEEP`]: "k", "/acme/web/staging/GONE_00": "other path" });
    seed(d, Object.fromEntries(gone.map((n) => [`${PATH}${n}`, "g"])));

    const kept = await push(adapter, { KEEP: "k2" }, false);
    expect(kept.result.removed).toEqual([]);
    expect(d.targets()).not.toContain("AmazonSSM.DeleteParameters");
    expect(d.parameters.size).toBe(14);

    const pruned = await push(adapter, { KEEP: "k3" }, true);
    expect(pruned.plan.removed).toEqual(gone);
    expect(pruned.result).toEqual({ written: ["KEEP"], removed: gone, failed: [] });
    expect(
      bodies(d, "AmazonSSM.DeleteParameters").map((b) => (b as { Names: string[] }).Names.length),
    ).toEqual([10, 2]);
    expect([...d.parameters.keys()].sort()).toEqual([`${PATH}KEEP`, "/acme/web/staging/GONE_00"]);
    expect(d.refusals).toEqual([]);
  });

  it("counts a name DeleteParameters calls invalid (already gone) as removed", async () => {
    const { d, adapter } = await setup();
    seed(d, { [`${PATH}THERE`]: "t" });
    // NEVER_THERE was deleted meanwhile, or by an earlier attempt: the target is as asked.
    const result = await adapter.apply({ upsert: {}, remove: ["NEVER_THERE", "THERE"] });
    expect(result).toEqual({ written: [], removed: ["NEVER_THERE", "THERE"], failed: [] });
    expect(bodies(d, "AmazonSSM.DeleteParameters")).toEqual([
      { Names: [`${PATH}NEVER_THERE`, `${PATH}THERE`] },
    ]);
    expect(d.parameters.size).toBe(0);
    expect(d.refusals).toEqual([]);
  });

  it("waits as a 429's Retry-After asks, then succeeds", async () => {
    const { d, ctx, adapter } = await setup();
    await adapter.listNames();
    d.fault({ status: 429, retryAfter: "3" });
    const result = await adapter.apply({ upsert: { A: "1" }, remove: [] });
    expect(result.written).toEqual(["A"]);
    expect(ctx.sleeps).toEqual([3000]);
    expect(d.targets().filter((t) => t === "AmazonSSM.PutParameter")).toHaveLength(2);
  });

  it("retries AWS's throttling answers (HTTP 400 ThrottlingException, TooManyUpdates) in the one retry loop", async () => {
    const { d, ctx, adapter } = await setup();
    d.failNext("AmazonSSM.GetParametersByPath");
    d.failNext("AmazonSSM.PutParameter", "TooManyUpdates");
    const { result } = await push(adapter, { A: "1" });
    expect(result).toEqual({ written: ["A"], removed: [], failed: [] });
    expect(ctx.sleeps).toHaveLength(2);
    expect(d.targets()).toEqual([
      "AmazonSSM.GetParametersByPath",
      "AmazonSSM.GetParametersByPath",
      "AmazonSSM.PutParameter",
      "AmazonSSM.PutParameter",
    ]);
    // The SDK's own retries are off: every retry above was the adapter's, each one a wait on the context's clock.
    expect(d.requests.every((r) => r.headers["amz-sdk-request"] === "attempt=1; max=1")).toBe(true);
  });

  it("stops after the retries when throttling lasts, with LK_PLATFORM_RATE_LIMITED", async () => {
    const { d, adapter } = await setup();
    for (let i = 0; i < 4; i++) d.failNext("AmazonSSM.GetParametersByPath");
    expect((await failure(adapter.listNames())).code).toBe("LK_PLATFORM_RATE_LIMITED");
    expect(d.targets()).toHaveLength(4);
  });

  it("turns an unknown access key (UnrecognizedClientException) into LK_PLATFORM_UNAUTHORIZED without the key", async () => {
    const { d, adapter } = await setup({ credential: `AKIAWRONGWRONGWRONG1:${SECRET}` });
    const error = await failure(adapter.listNames());
    expect(error.code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(error.message).toContain("UnrecognizedClientException");
    expect(JSON.stringify(error.toJSON())).not.toMatch(/AKIAWRONG|wJalr/);
    expect(d.targets()).toHaveLength(1);
  });

  it("turns a wrong secret key (InvalidSignatureException) into LK_PLATFORM_UNAUTHORIZED without the key", async () => {
    const wrong = "AAAAAAAAAAAAAAAAAAAA/BBBBBBBBBBBBBBBBBBB";
    const { adapter } = await setup({ credential: `${KEY_ID}:${wrong}` });
    const error = await failure(adapter.apply({ upsert: { A: "1" }, remove: [] }));
    expect(error.code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(error.message).toContain("InvalidSignatureException");
    expect(JSON.stringify(error.toJSON())).not.toContain(wrong);
  });

  it("refuses a credential that is not ACCESS_KEY_ID:SECRET_ACCESS_KEY before sending anything, without quoting it", async () => {
    const { d, adapter } = await setup({ credential: "not-an-access-key-but-a-secret" });
    const error = await failure(adapter.listNames());
    expect(error.code).toBe("LK_USAGE");
    expect(error.hint).toMatch(/ACCESS_KEY_ID|access key id/);
    expect(JSON.stringify(error.toJSON())).not.toContain("not-an-access-key-but-a-secret");
    expect(d.requests).toEqual([]);
  });

  it("signs with the context's clock: a request signed more than 5 minutes away is refused", async () => {
    const { d } = await setup();
    const ctx = platformContext(NOW + 10 * 60_000);
    const adapter = awsSsmAdapter({
      ctx,
      config: { platform: "aws-ssm", region: "eu-west-1", path: PATH, baseUrl: d.url },
      credential: CREDENTIAL,
    });
    const error = await failure(adapter.listNames());
    expect(error.code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(error.message).toContain("InvalidSignatureException");
  });

  it("pulls the decrypted values of the parameters under the path", async () => {
    const { d, adapter } = await setup();
    seed(d, { [`${PATH}A`]: "va", [`${PATH}B`]: "vb", "/acme/web/staging/C": "vc" });
    expect(await adapter.pull!()).toEqual({ values: { A: "va", B: "vb" }, withheld: [] });
    expect(bodies(d, "AmazonSSM.GetParametersByPath")).toEqual([
      { Path: PATH, Recursive: false, WithDecryption: true, MaxResults: 10 },
    ]);
    expect(d.refusals).toEqual([]);
  });

  it("reports exactly the names written when SSM refuses some", async () => {
    const { d, adapter } = await setup();
    d.refuseNames.add(`${PATH}B`);
    const { result } = await push(adapter, { A: "1", B: "2", C: "3", "bad name": "4" });
    expect(result.written).toEqual(["A", "C"]);
    expect(result.failed).toEqual([
      { name: "B", reason: expect.stringMatching(/^LK_PLATFORM_FAILED: .*ParameterLimitExceeded/) as string },
      { name: "bad name", reason: expect.stringMatching(/not a valid SSM parameter name/) as string },
    ]);
    expect([...d.parameters.keys()].sort()).toEqual([`${PATH}A`, `${PATH}C`]);
    expect(d.refusals).toEqual([]);
  });

  it("stops sending once the key is refused mid-push and reports exactly the names written", async () => {
    const { d, adapter } = await setup();
    d.revokeAfter("AmazonSSM.PutParameter", 2);
    const names = Array.from({ length: 10 }, (_, i) => `N${i}`);
    const result = await adapter.apply({
      upsert: Object.fromEntries(names.map((n) => [n, "v"])),
      remove: ["OLD"],
    });
    const stored = [...d.parameters.keys()].map((name) => name.slice(PATH.length)).sort();
    expect(stored).toHaveLength(2);
    expect(result.written).toEqual(stored);
    expect(result.removed).toEqual([]);
    expect(result.failed.map((f) => f.name)).toEqual(
      [...names.filter((n) => !stored.includes(n)), "OLD"].sort(),
    );
    for (const f of result.failed) expect(f.reason).toMatch(/^LK_PLATFORM_UNAUTHORIZED: /);
    // Only the requests already in flight when the key was refused went out; no deletion was attempted.
    expect(d.targets().filter((t) => t === "AmazonSSM.PutParameter").length).toBeLessThanOrEqual(6);
    expect(d.targets()).not.toContain("AmazonSSM.DeleteParameters");
    expect(d.refusals).toEqual([]);
  });

  it("sends nothing anywhere but the connection's endpoint, whatever AWS_* variables and ~/.aws say", async () => {
    const home = await mkdtemp(join(tmpdir(), "latchkey-aws-"));
    try {
      const config = join(home, "config");
      await writeFile(
        config,
        "[default]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:9/\nmax_attempts = 7\nuse_fips_endpoint = true\n",
      );
      await writeFile(
        join(home, "credentials"),
        "[default]\naws_access_key_id = AKIAFROMTHEFILE00000\naws_secret_access_key = x\n",
      );
      vi.stubEnv("AWS_CONFIG_FILE", config);
      vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", join(home, "credentials"));
      vi.stubEnv("AWS_PROFILE", "default");
      vi.stubEnv("AWS_REGION", "us-east-1");
      vi.stubEnv("AWS_DEFAULT_REGION", "us-east-1");
      vi.stubEnv("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENV000000");
      vi.stubEnv("AWS_SECRET_ACCESS_KEY", "from-the-env");
      vi.stubEnv("AWS_ENDPOINT_URL", "http://127.0.0.1:9/");
      vi.stubEnv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9/");
      vi.stubEnv("AWS_MAX_ATTEMPTS", "9");
      vi.stubEnv("AWS_USE_FIPS_ENDPOINT", "true");
      vi.stubEnv("AWS_USE_DUALSTACK_ENDPOINT", "true");
      vi.stubEnv("AWS_LAMBDA_FUNCTION_NAME", "f");
      vi.stubEnv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793");

      // With a base URL: the double, signed with the connection's key for its region, once per call.
      const { d, adapter } = await setup();
      await push(adapter, { A: "1" });
      expect(d.refusals).toEqual([]);
      for (const r of d.requests) {
        expect(r.headers.authorization).toContain(`Credential=${KEY_ID}/20261207/eu-west-1/ssm/`);
        expect(r.headers["x-amzn-trace-id"]).toBeUndefined();
        expect(r.headers["amz-sdk-request"]).toBe("attempt=1; max=1");
      }

      // Without one: the region's standard endpoint, not the configured ones.
      const urls: string[] = [];
      const ctx = {
        ...platformContext(NOW),
        fetch: (input: string | URL | Request) => {
          urls.push(input instanceof Request ? input.url : input.toString());
          return Promise.resolve(
            new Response(JSON.stringify({ Parameters: [] }), {
              status: 200,
              headers: { "content-type": "application/x-amz-json-1.1" },
            }),
          );
        },
      };
      const standard = awsSsmAdapter({
        ctx,
        config: { platform: "aws-ssm", region: "eu-west-1", path: PATH },
        credential: CREDENTIAL,
      });
      expect(await standard.listNames()).toEqual([]);
      expect(urls).toEqual(["https://ssm.eu-west-1.amazonaws.com/"]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it("has a double that refuses requests of the wrong shape, even well signed", async () => {
    const { d } = await setup();
    const send = async (target: string, body: unknown, contentType?: string) => {
      const text = JSON.stringify(body);
      const headers = signedJsonHeaders({
        url: d.url,
        target,
        body: text,
        keyId: KEY_ID,
        secret: SECRET,
        region: "eu-west-1",
        service: "ssm",
        now: NOW,
        ...(contentType === undefined ? {} : { contentType }),
      });
      const response = await fetch(d.url, { method: "POST", headers, body: text });
      return { status: response.status, type: ((await response.json()) as { __type: string }).__type };
    };
    // A request of the right shape passes, so what follows is refused for its shape, not its signature.
    expect(await send("AmazonSSM.DeleteParameters", { Names: [`${PATH}A`] })).toEqual({
      status: 200,
      type: undefined,
    });
    expect(d.refusals).toEqual([]);
    expect(await send("AmazonSSM.PutParameter", { Name: `${PATH}A`, Value: "1", Secret: "x" })).toEqual({
      status: 400,
      type: "SerializationException",
    });
    await send("AmazonSSM.PutParameter", { Name: `${PATH}A` });
    await send("AmazonSSM.PutParameter", { Name: `${PATH}A`, Value: "1", Overwrite: "true" });
    expect(await send("AmazonSSM.GetParameter", { Name: `${PATH}A` })).toEqual({
      status: 400,
      type: "UnknownOperationException",
    });
    await send("AmazonSSM.PutParameter", { Name: `${PATH}A`, Value: "1" }, "application/json");
    expect(d.refusals).toEqual([
      "AmazonSSM.PutParameter: AmazonSSM.PutParameter has no member Secret",
      "AmazonSSM.PutParameter: AmazonSSM.PutParameter: Value is required",
      "AmazonSSM.PutParameter: AmazonSSM.PutParameter: Overwrite must be of type boolean",
      "AmazonSSM.GetParameter: unknown target AmazonSSM.GetParameter",
      "AmazonSSM.PutParameter: content-type must be application/x-amz-json-1.1",
    ]);
    expect(d.parameters.size).toBe(0);
  });
});
