import { describe, expect, it } from "vitest";
import { parseBearerChallenge } from "./fetch.js";

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
