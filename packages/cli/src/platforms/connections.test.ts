// The connect command line's target flags → a connection's configuration, checked with core's schema.
import {
  checkSchema,
  isLatchkeyError,
  platformConfigSchema,
  platformCredentialContext,
  type LatchkeyError,
} from "@latchkey/core";
import { describe, expect, it } from "vitest";
import { configFromFlags } from "./connections.js";

describe("configFromFlags", () => {
  it("builds each platform's configuration, which core's schema accepts", () => {
    const made = [
      configFromFlags("vercel", { project: "prj_1", team: "team_2", target: ["preview"], type: "sensitive" }),
      configFromFlags("vercel", { project: "prj_1", target: [] }),
      configFromFlags("fly", { app: "acme-web", baseUrl: "http://127.0.0.1:9" }),
      configFromFlags("github-actions", { repo: "acme/web", repoEnvironment: "production" }),
      configFromFlags("generic", { url: "https://hooks.example.com/latchkey" }),
      configFromFlags("railway", {
        project: "p1",
        railwayEnvironment: "e1",
        service: "s1",
        tokenType: "project",
      }),
      configFromFlags("coolify", { application: "u1", baseUrl: "https://coolify.example.com" }),
      configFromFlags("aws-ssm", {
        region: "eu-west-1",
        path: "/acme/web/production/",
        kmsKey: "alias/acme",
      }),
      configFromFlags("aws-sm", { region: "us-east-1", secretId: "acme/web/production" }),
    ];
    for (const config of made) expect(checkSchema(platformConfigSchema, config).ok).toBe(true);
    expect(made[1]).toEqual({
      platform: "vercel",
      projectId: "prj_1",
      target: ["production"],
      type: "encrypted",
    });
    expect(made[5]).toEqual({
      platform: "railway",
      projectId: "p1",
      environmentId: "e1",
      serviceId: "s1",
      tokenType: "project",
    });
    expect(made[3]).toEqual({
      platform: "github-actions",
      owner: "acme",
      repo: "web",
      environment: "production",
    });
  });

  it("refuses an unknown platform, another platform's flag, a missing target and plain http off loopback", () => {
    expect(() => configFromFlags("heroku", {})).toThrow(/PLATFORM must be one of/);
    expect(() => configFromFlags("fly", { app: "a", project: "p" })).toThrow(
      /--project is not an option of fly/,
    );
    expect(() => configFromFlags("fly", {})).toThrow(/The fly target is not valid/);
    expect(() => configFromFlags("github-actions", { repo: "acme" })).toThrow(/--repo must be OWNER\/REPO/);
    expect(() => configFromFlags("generic", { url: "http://hooks.example.com/" })).toThrow(/not valid/);
    expect(() => configFromFlags("railway", { project: "p" })).toThrow(/The railway target is not valid/);
    expect(() => configFromFlags("aws-ssm", { region: "eu-west-1", path: "acme/web" })).toThrow(
      /starts and ends with "\/"/,
    );
    expect(() => configFromFlags("aws-sm", { region: "Europe", secretId: "s" })).toThrow(/AWS region/);
    // "/" would make the connection own, and a prune delete, every top-level parameter; AWS reserves aws and ssm.
    for (const [path, reason] of [
      ["/", /at least one level/],
      ["/aws/", /cannot begin with "aws" or "ssm"/],
      ["/SSM/acme/", /cannot begin with "aws" or "ssm"/],
    ] as const) {
      const refused = (() => {
        try {
          configFromFlags("aws-ssm", { region: "eu-west-1", path });
          return null;
        } catch (error) {
          return error;
        }
      })();
      expect(isLatchkeyError(refused, "LK_USAGE"), path).toBe(true);
      expect((refused as LatchkeyError).message).toMatch(reason);
      expect((refused as LatchkeyError).hint).toContain("--path");
    }
    expect(() => configFromFlags("coolify", { application: "u", app: "a" })).toThrow(
      /--app is not an option of coolify/,
    );
  });
});

describe("platformCredentialContext", () => {
  it("binds the vault in its one spelling and the connection", () => {
    const vault = "0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9";
    const id = "6a0b7c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d";
    expect(platformCredentialContext(vault, id)).toEqual(platformCredentialContext(vault.toLowerCase(), id));
    expect(platformCredentialContext(vault, id)).not.toEqual(
      platformCredentialContext(vault, "7a0b7c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d"),
    );
  });
});
