import { describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { redactBody, traceFetch } from "./http-trace.js";
import { parseBearerChallenge } from "./fetch.js";

const SECRETS = [
  "cs-0123456789abcdef",
  "at-0123456789abcdef",
  "rt-0123456789abcdef",
  "pw-0123456789abcdef",
  "code-0123456789",
];

describe("redactBody", () => {
  it("redacts secret form fields and keeps the rest", () => {
    const form = new URLSearchParams({
      grant_type: "password",
      username: "alice",
      password: SECRETS[3]!,
      client_secret: SECRETS[0]!,
      refresh_token: SECRETS[2]!,
      code: SECRETS[4]!,
      code_verifier: "v-0123456789",
      scope: "api:read",
    }).toString();
    const out = redactBody(form, "application/x-www-form-urlencoded");
    for (const s of SECRETS) expect(out).not.toContain(s);
    expect(out).not.toContain("v-0123456789");
    expect(out).toContain("grant_type=password");
    expect(out).toContain("scope=api%3Aread");
    expect(out).toContain("password=[REDACTED]");
  });

  it("redacts token fields in JSON at any depth, keeps endpoints and errors", () => {
    const json = JSON.stringify({
      access_token: SECRETS[1],
      refresh_token: SECRETS[2],
      id_token: "eyJ.x.y",
      device_code: "dc",
      token_endpoint: "https://x/token",
      nested: [{ client_secret: SECRETS[0] }],
      error: "invalid_grant",
    });
    const out = redactBody(json, "application/json; charset=utf-8");
    for (const s of SECRETS) expect(out).not.toContain(s);
    expect(out).not.toContain("eyJ.x.y");
    expect(out).toContain('"token_endpoint":"https://x/token"');
    expect(out).toContain('"error":"invalid_grant"');
  });

  it("shows other bodies only by length", () => {
    expect(redactBody(`opaque ${SECRETS[1]}`, "text/plain")).toBe("(26 characters)");
  });
});

describe("traceFetch", () => {
  it("-v prints request and status lines; -vv headers and bodies, all redacted", async () => {
    const answer = (): Response =>
      new Response(JSON.stringify({ access_token: SECRETS[1], token_type: "Bearer" }), {
        status: 200,
        headers: { "content-type": "application/json", "set-cookie": "sid=abc123secret" },
      });
    const ctx = createTestContext({ fetch: () => Promise.resolve(answer()) });
    const init = {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`svc:${SECRETS[0]}`).toString("base64")}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ grant_type: "client_credentials", client_secret: SECRETS[0]! }),
    };
    await traceFetch(ctx, 0)("https://idp.example/token", init);
    expect(ctx.stderr.text()).toBe("");
    await traceFetch(ctx, 1)("https://idp.example/token?code=abc", init);
    expect(ctx.stderr.text()).toContain("> POST https://idp.example/token?code=[REDACTED]");
    expect(ctx.stderr.text()).toContain("< 200");
    const vv = createTestContext({ fetch: () => Promise.resolve(answer()) });
    const response = await traceFetch(vv, 2)("https://idp.example/token", init);
    const text = vv.stderr.text();
    expect(text).toContain("> authorization: Basic [REDACTED]");
    expect(text).toContain("grant_type=client_credentials");
    expect(text).toContain("< set-cookie: [REDACTED]");
    expect(text).toContain('"access_token":"[REDACTED]"');
    for (const s of [...SECRETS, "abc123secret", Buffer.from(`svc:${SECRETS[0]}`).toString("base64")])
      expect(text).not.toContain(s);
    // The caller still gets the whole body.
    expect(((await response.json()) as { access_token: string }).access_token).toBe(SECRETS[1]);
  });
});

describe("parseBearerChallenge", () => {
  it.each([
    [
      'Bearer realm="api", error="invalid_token", error_description="expired"',
      { error: "invalid_token", errorDescription: "expired" },
    ],
    ["Bearer", {}],
    [
      'Bearer error="insufficient_scope", scope="api:write api:admin"',
      { error: "insufficient_scope", scope: "api:write api:admin" },
    ],
    [
      'Bearer error="insufficient_user_authentication", acr_values="mfa", max_age=0',
      { error: "insufficient_user_authentication", acrValues: "mfa", maxAge: "0" },
    ],
    ['Basic realm="x", Bearer error=invalid_token', { error: "invalid_token" }],
    ['DPoP algs="ES256", Bearer realm="a\\"b"', {}],
  ])("%s", (header, expected) => {
    expect(parseBearerChallenge(header)).toEqual(expected);
  });

  it("returns null without a Bearer challenge", () => {
    expect(parseBearerChallenge(null)).toBeNull();
    expect(parseBearerChallenge('Basic realm="x"')).toBeNull();
  });
});
