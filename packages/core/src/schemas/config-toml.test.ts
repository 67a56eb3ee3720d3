import { describe, expect, it } from "vitest";
import { ciSchema, environmentSchema, profileSchema, userRegistrySchema } from "./config-toml.js";
import { checkSchema } from "./parse.js";

const base = { issuer: "https://login.example.com", client_id: "svc", client_secret_env: "SVC_SECRET" };

describe("config.toml's sections", () => {
  it("read an environment with its defaults and in the CLI's names", () => {
    expect(
      checkSchema(environmentSchema, { ...base, scopes: " api:read  api:write ", resource: "https://a/" }),
    ).toEqual({
      ok: true,
      value: {
        issuer: "https://login.example.com",
        clientId: "svc",
        clientSecretEnv: "SVC_SECRET",
        grant: "client_credentials",
        scopes: ["api:read", "api:write"],
        resource: ["https://a/"],
      },
    });
    expect(
      checkSchema(profileSchema, { server: "http://127.0.0.1:8080", sso_client_id: "x", environments: {} }),
    ).toEqual({ ok: true, value: { server: "http://127.0.0.1:8080", ssoClientId: "x" } });
  });

  it.each([
    [
      { ...base, scopes: ["a", ""] },
      ["scopes"],
      "expected an array of scope strings or one space-separated string",
    ],
    [{ ...base, resource: ["https://a/", "https://b/#x"] }, ["resource"], "RFC 8707"],
    [{ ...base, client_id: "" }, ["client_id"], "expected a non-empty string"],
    [{ ...base, client_id: undefined }, ["client_id"], "client_id is required"],
    [{ ...base, grant: "implicit" }, ["grant"], "expected one of client_credentials, authorization_code"],
    [{ ...base, grant: "password", username: "u" }, ["password_env"], "the password grant needs username"],
    [{ ...base, username: "u" }, ["username"], "only the password grant takes"],
    [{ ...base, token_endpoint: "https://x/token" }, [], "declare exactly one of issuer"],
    [
      { ...base, issuer: "http://login.example.com" },
      ["issuer"],
      "issuer (http://login.example.com) must use https",
    ],
    [{ ...base, issuer: "not a url" }, ["issuer"], "issuer is not a URL"],
  ])("refuse environment %j at %j", (value, path, message) => {
    const checked = checkSchema(environmentSchema, value);
    expect(checked.ok).toBe(false);
    if (!checked.ok) {
      expect(checked.path).toEqual(path);
      expect(checked.message).toContain(message);
    }
  });

  it("name an unknown field before what its absence left missing, and list the accepted ones", () => {
    expect(checkSchema(environmentSchema, { issuer: "https://x", clientid: "svc" })).toEqual({
      ok: false,
      path: ["clientid"],
      message:
        'unknown field "clientid" (accepted: issuer, token_endpoint, client_id, client_secret_env, grant, scopes, audience, resource, username, password_env)',
    });
  });

  it("take no TOML date, array or scalar for a table", () => {
    for (const value of [new Date(0), [], "x", 1, null]) {
      expect(checkSchema(profileSchema, value)).toEqual({ ok: false, path: [], message: "expected a table" });
      expect(checkSchema(ciSchema, value).ok).toBe(false);
    }
  });

  it("leave [ci] keys it does not know alone, but not a wrong allow_project_credentials", () => {
    expect(checkSchema(ciSchema, { allow_project_credentials: true, later: 1 })).toEqual({
      ok: true,
      value: { allow_project_credentials: true, later: 1 },
    });
    expect(checkSchema(ciSchema, { allow_project_credentials: "yes" })).toEqual({
      ok: false,
      path: ["allow_project_credentials"],
      message: "expected true or false",
    });
  });

  it("refuse a registry's kind outside the four", () => {
    expect(checkSchema(userRegistrySchema, { kind: "GitLab" })).toEqual({
      ok: false,
      path: ["kind"],
      message: "expected one of npm, github, gitlab, custom",
    });
  });
});
