import { LatchkeyError, type RailwayConfig } from "@latchkey/core";
import { afterEach, describe, expect, it } from "vitest";
import { startRailwayDouble, type RailwayDouble } from "../../test/support/platforms/railway-double.js";
import { platformContext, push } from "../../test/support/platforms/test-context.js";
import { planPush } from "./adapter.js";
import { RAILWAY_DOCUMENTS, railwayAdapter } from "./railway.js";

const TOKEN = "railway-token-4f1c9e";
const REFUSED = "refused by Railway (a GraphQL error; its message may echo values, so it is not shown)";
let double: RailwayDouble | undefined;

afterEach(async () => {
  await double?.close();
  double = undefined;
});

async function setup(overrides: Partial<RailwayConfig> = {}, credential = TOKEN) {
  const config: RailwayConfig = {
    platform: "railway",
    projectId: "prj-1",
    environmentId: "env-prod",
    tokenType: "account",
    ...overrides,
  };
  double = await startRailwayDouble({
    token: TOKEN,
    tokenType: config.tokenType === "project" ? "project" : "bearer",
    projectId: "prj-1",
    environmentId: "env-prod",
    serviceIds: ["svc-api"],
  });
  const ctx = platformContext();
  const adapter = railwayAdapter({
    ctx,
    config: { ...config, baseUrl: double.url },
    credential,
  });
  return { d: double, ctx, adapter };
}

function operations(d: RailwayDouble): string[] {
  return d.requests.map(
    (r) => /\b(variables|variableCollectionUpsert|variableDelete)\(/.exec(r.body)?.[1] ?? "?",
  );
}

function error(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (e: unknown) => e,
  );
}

describe("railway adapter", () => {
  it("pushes to an empty environment in one collection upsert that does not deploy", async () => {
    const { d, adapter } = await setup();
    const { plan, result } = await push(adapter, { API_KEY: "s3cret-1", DB_URL: "postgres://x" });
    expect(plan).toMatchObject({ added: ["API_KEY", "DB_URL"], changed: [], removed: [] });
    expect(result).toEqual({ written: ["API_KEY", "DB_URL"], removed: [], failed: [] });
    expect(Object.fromEntries(d.scope())).toEqual({ API_KEY: "s3cret-1", DB_URL: "postgres://x" });
    expect(operations(d)).toEqual(["variables", "variableCollectionUpsert"]);
    const upsert = JSON.parse(d.requests[1]!.body) as unknown;
    expect(upsert).toEqual({
      query: RAILWAY_DOCUMENTS.upsert,
      variables: {
        input: {
          projectId: "prj-1",
          environmentId: "env-prod",
          variables: { API_KEY: "s3cret-1", DB_URL: "postgres://x" },
          skipDeploys: true,
        },
      },
    });
    expect(d.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(d.requests.every((r) => r.headers["project-access-token"] === undefined)).toBe(true);
    expect(d.refusals).toEqual([]);
  });

  it("sends a project token in Project-Access-Token, never as a bearer token, and writes a service's scope", async () => {
    const { d, adapter } = await setup({ tokenType: "project", serviceId: "svc-api" });
    const { result } = await push(adapter, { A: "1" });
    expect(result.written).toEqual(["A"]);
    expect(Object.fromEntries(d.scope("svc-api"))).toEqual({ A: "1" });
    expect(d.scope().size).toBe(0);
    expect(d.requests.every((r) => r.headers["project-access-token"] === TOKEN)).toBe(true);
    expect(d.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
    expect(d.refusals).toEqual([]);
  });

  it("overwrites a changed value", async () => {
    const { d, adapter } = await setup();
    d.scope().set("API_KEY", "old");
    const { plan, result } = await push(adapter, { API_KEY: "new", OTHER: "o" });
    expect(plan).toMatchObject({ added: ["OTHER"], changed: ["API_KEY"] });
    expect(result.written).toEqual(["API_KEY", "OTHER"]);
    expect(Object.fromEntries(d.scope())).toEqual({ API_KEY: "new", OTHER: "o" });
    expect(d.refusals).toEqual([]);
  });

  it("plans a dry run from the names alone and writes nothing", async () => {
    const { d, adapter } = await setup();
    d.scope().set("GONE", "x");
    const plan = planPush(await adapter.listNames(), { NEW: "n" }, true);
    expect(plan).toMatchObject({ added: ["NEW"], changed: [], removed: ["GONE"] });
    expect(operations(d)).toEqual(["variables"]);
    expect(Object.fromEntries(d.scope())).toEqual({ GONE: "x" });
    expect(d.refusals).toEqual([]);
  });

  it("deletes exactly the absent names with prune, after the upsert, and nothing without prune", async () => {
    const { d, adapter } = await setup();
    d.scope().set("KEEP", "k");
    d.scope().set("GONE", "g");
    d.scope().set("ALSO_GONE", "a");
    const kept = await push(adapter, { KEEP: "k2" }, false);
    expect(kept.result.removed).toEqual([]);
    expect([...d.scope().keys()].sort()).toEqual(["ALSO_GONE", "GONE", "KEEP"]);

    d.requests.length = 0;
    const pruned = await push(adapter, { KEEP: "k3" }, true);
    expect(pruned.result).toEqual({ written: ["KEEP"], removed: ["ALSO_GONE", "GONE"], failed: [] });
    expect(Object.fromEntries(d.scope())).toEqual({ KEEP: "k3" });
    expect(operations(d)).toEqual([
      "variables",
      "variableCollectionUpsert",
      "variableDelete",
      "variableDelete",
    ]);
    expect(JSON.parse(d.requests[2]!.body)).toEqual({
      query: RAILWAY_DOCUMENTS.delete,
      variables: { input: { projectId: "prj-1", environmentId: "env-prod", name: "ALSO_GONE" } },
    });
    expect(d.refusals).toEqual([]);
  });

  it("never lists, prunes or pulls the RAILWAY_ variables Railway provides", async () => {
    const { d, adapter } = await setup();
    d.scope().set("RAILWAY_PUBLIC_DOMAIN", "x.up.railway.app");
    d.scope().set("MINE", "m");
    expect(await adapter.listNames()).toEqual(["MINE"]);
    const { result } = await push(adapter, { OTHER: "o" }, true);
    expect(result.removed).toEqual(["MINE"]);
    expect(d.scope().get("RAILWAY_PUBLIC_DOMAIN")).toBe("x.up.railway.app");
    expect(await adapter.pull!()).toEqual({ values: { OTHER: "o" }, withheld: [] });
  });

  it("lists a sealed variable (null value), writes and prunes it, and names it withheld by a pull", async () => {
    const { d, adapter } = await setup();
    d.scope().set("SEALED_KEY", "sealed-value-71");
    d.sealed().add("SEALED_KEY");
    d.scope().set("OPEN", "o");
    expect(await adapter.listNames()).toEqual(["OPEN", "SEALED_KEY"]);
    expect(await adapter.pull!()).toEqual({ values: { OPEN: "o" }, withheld: ["SEALED_KEY"] });

    const { plan, result } = await push(adapter, { SEALED_KEY: "rotated", OPEN: "o2" });
    expect(plan).toMatchObject({ added: [], changed: ["OPEN", "SEALED_KEY"], removed: [] });
    expect(result).toEqual({ written: ["OPEN", "SEALED_KEY"], removed: [], failed: [] });
    expect(d.scope().get("SEALED_KEY")).toBe("rotated");
    expect(d.sealed().has("SEALED_KEY")).toBe(true);

    const pruned = await push(adapter, { OPEN: "o3" }, true);
    expect(pruned.plan.removed).toEqual(["SEALED_KEY"]);
    expect(pruned.result).toEqual({ written: ["OPEN"], removed: ["SEALED_KEY"], failed: [] });
    expect(Object.fromEntries(d.scope())).toEqual({ OPEN: "o3" });
    expect(d.refusals).toEqual([]);
  });

  it("counts a delete Railway refuses for a name already gone as removed, and one still there as failed", async () => {
    const { d, adapter } = await setup();
    d.refuseAbsentDeletes = true;
    d.scope().set("X", "1");
    d.scope().set("STUCK", "2");
    d.refuseNames.add("STUCK");
    // GONE was asked to be removed but is not there any more (removed meanwhile, or by an earlier attempt).
    const result = await adapter.apply({ upsert: {}, remove: ["GONE", "STUCK", "X"] });
    expect(result).toEqual({
      written: [],
      removed: ["X", "GONE"],
      failed: [{ name: "STUCK", reason: REFUSED }],
    });
    expect(operations(d)).toEqual(["variableDelete", "variableDelete", "variableDelete", "variables"]);
    expect(d.refusals).toEqual([]);
  });

  it("waits as a 429's Retry-After asks, then succeeds", async () => {
    const { d, ctx, adapter } = await setup();
    d.fault({ status: 429, retryAfter: "3", match: "POST" });
    const { result } = await push(adapter, { A: "1" });
    expect(result.written).toEqual(["A"]);
    expect(ctx.sleeps).toEqual([3000]);
    expect(d.requests).toHaveLength(3);
    expect(d.refusals).toEqual([]);
  });

  it("turns Railway's HTTP 200 'Not Authorized' into LK_PLATFORM_UNAUTHORIZED without the token", async () => {
    const { d, adapter } = await setup({}, "wrong-token-xyz987");
    const e = await error(adapter.listNames());
    expect(e).toBeInstanceOf(LatchkeyError);
    expect((e as LatchkeyError).code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(JSON.stringify((e as LatchkeyError).toJSON())).not.toContain("wrong-token-xyz987");
    const w = await error(adapter.apply({ upsert: { A: "1" }, remove: [] }));
    expect((w as LatchkeyError).code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(d.scope().size).toBe(0);
    expect(d.refusals).toEqual([]);
  });

  it("turns Railway's 'Project Token not found' into LK_PLATFORM_UNAUTHORIZED", async () => {
    const { d, adapter } = await setup({ tokenType: "project" }, "unknown-project-token-55");
    const e = await error(adapter.pull!());
    expect((e as LatchkeyError).code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(JSON.stringify((e as LatchkeyError).toJSON())).not.toContain("unknown-project-token-55");
    expect(d.requests[0]!.headers["project-access-token"]).toBe("unknown-project-token-55");
    expect(d.refusals).toEqual([]);
  });

  it("is refused by Railway when the credential is in the other token type's header", async () => {
    double = await startRailwayDouble({
      token: TOKEN,
      tokenType: "project",
      projectId: "prj-1",
      environmentId: "env-prod",
    });
    const adapter = railwayAdapter({
      ctx: platformContext(),
      config: {
        platform: "railway",
        projectId: "prj-1",
        environmentId: "env-prod",
        tokenType: "team",
        baseUrl: double.url,
      },
      credential: TOKEN,
    });
    expect(((await error(adapter.listNames())) as LatchkeyError).code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(double.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(double.refusals).toEqual([]);
  });

  it("pulls the unrendered values, references kept, so they round-trip", async () => {
    const { d, adapter } = await setup({ serviceId: "svc-api" });
    d.scope("svc-api").set("DATABASE_URL", "${{Postgres.DATABASE_URL}}");
    d.scope("svc-api").set("API_KEY", 'k=v; "quoted"\nline2');
    const { values: pulled, withheld } = await adapter.pull!();
    expect(pulled).toEqual({ DATABASE_URL: "${{Postgres.DATABASE_URL}}", API_KEY: 'k=v; "quoted"\nline2' });
    expect(withheld).toEqual([]);
    d.scope("svc-api").clear();
    await push(adapter, pulled);
    expect(Object.fromEntries(d.scope("svc-api"))).toEqual(pulled);
    expect(JSON.parse(d.requests[0]!.body)).toEqual({
      query: RAILWAY_DOCUMENTS.variables,
      variables: { projectId: "prj-1", environmentId: "env-prod", serviceId: "svc-api", unrendered: true },
    });
    expect(d.refusals).toEqual([]);
  });

  it("reports a refused upsert as every name failed, and sends no delete after it", async () => {
    const { d, adapter } = await setup();
    d.scope().set("OLD", "o");
    d.refuseNames.add("B");
    const { result } = await push(adapter, { A: "secret-a", B: "secret-b" }, true);
    expect(result.written).toEqual([]);
    expect(result.removed).toEqual([]);
    expect(result.failed).toEqual([
      { name: "A", reason: REFUSED },
      { name: "B", reason: REFUSED },
      { name: "OLD", reason: "not sent: the write failed" },
    ]);
    expect(operations(d)).toEqual(["variables", "variableCollectionUpsert"]);
    expect(d.refusals).toEqual([]);
  });

  it("reports exactly the names removed when Railway refuses one delete", async () => {
    const { d, adapter } = await setup();
    d.scope().set("X", "1");
    d.scope().set("Y", "2");
    d.scope().set("Z", "3");
    d.refuseNames.add("Y");
    const { result } = await push(adapter, { A: "a" }, true);
    expect(result).toEqual({
      written: ["A"],
      removed: ["X", "Z"],
      failed: [{ name: "Y", reason: REFUSED }],
    });
    expect([...d.scope().keys()].sort()).toEqual(["A", "Y"]);
    expect(d.refusals).toEqual([]);
  });

  it("never quotes Railway's error message, which may echo a value", async () => {
    const { d, adapter } = await setup();
    // The double's refusal names the variable, and this variable's name is its value.
    d.refuseNames.add("hunter2_value");
    const { result } = await push(adapter, { hunter2_value: "hunter2_value" });
    expect(result.failed).toEqual([{ name: "hunter2_value", reason: REFUSED }]);
    expect(d.refusals).toEqual([]);
  });

  it("the double refuses a document or variables that break Railway's schema", async () => {
    const { d } = await setup();
    const post = (body: unknown, auth: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) =>
      fetch(`${d.url}/graphql/v2`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth },
        body: JSON.stringify(body),
      });
    const input = { projectId: "prj-1", environmentId: "env-prod", variables: { A: "1" }, skipDeploys: true };
    const cases: [unknown, RegExp][] = [
      [{ query: "query { me { name } }" }, /Cannot query field "me"/],
      [{ query: RAILWAY_DOCUMENTS.upsert, variables: {} }, /was not provided/],
      [
        { query: RAILWAY_DOCUMENTS.upsert, variables: { input: { ...input, extra: 1 } } },
        /"extra" is not defined/,
      ],
      [
        { query: RAILWAY_DOCUMENTS.upsert, variables: { input: { ...input, variables: { A: 1 } } } },
        /string values/,
      ],
      [
        {
          query: RAILWAY_DOCUMENTS.variables,
          variables: { projectId: "prj-1", environmentId: 7, unrendered: true },
        },
        /String cannot represent/,
      ],
      [
        {
          query: RAILWAY_DOCUMENTS.delete,
          variables: { input: { projectId: "prj-1", environmentId: "env-prod" } },
        },
        /name/,
      ],
      [
        {
          query: RAILWAY_DOCUMENTS.delete.replace("VariableDeleteInput!", "VariableDeleteInput"),
          variables: {},
        },
        /expecting type/,
      ],
    ];
    for (const [body, reason] of cases) {
      const response = await post(body);
      expect(response.status).toBe(400);
      const answer = (await response.json()) as { errors: { message: string }[] };
      expect(answer.errors[0]!.message).toMatch(reason);
    }
    expect(d.refusals).toHaveLength(cases.length);
    // A right document with the credential in the wrong header is Railway's HTTP 200 "Not Authorized".
    const wrongHeader = await post(
      { query: RAILWAY_DOCUMENTS.upsert, variables: { input } },
      { "project-access-token": TOKEN },
    );
    expect(wrongHeader.status).toBe(200);
    expect(await wrongHeader.json()).toEqual({ data: null, errors: [{ message: "Not Authorized" }] });
    expect(d.scope().size).toBe(0);
  });
});
