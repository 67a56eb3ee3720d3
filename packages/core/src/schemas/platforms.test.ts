// The platform configurations' rules that protect what a connection owns.
import { describe, expect, it } from "vitest";
import { checkSchema } from "./parse.js";
import { awsSsmConfigSchema } from "./platforms.js";

function pathProblem(path: string): string | null {
  const checked = checkSchema(awsSsmConfigSchema, { platform: "aws-ssm", region: "eu-west-1", path });
  return checked.ok ? null : checked.message;
}

describe("awsSsmConfigSchema's path", () => {
  it("takes a path of one level or more", () => {
    expect(pathProblem("/acme/")).toBeNull();
    expect(pathProblem("/acme/web/production/")).toBeNull();
    expect(pathProblem(`/${Array.from({ length: 14 }, (_, i) => `l${i}`).join("/")}/`)).toBeNull();
    // Only a leading "aws" or "ssm" is reserved.
    expect(pathProblem("/acme/aws/")).toBeNull();
  });

  it("refuses / alone, which would own (and prune) every top-level parameter", () => {
    expect(pathProblem("/")).toMatch(/at least one level/);
    expect(pathProblem("//")).toMatch(/at least one level/);
  });

  it("refuses a path AWS reserves: beginning with aws or ssm, in any case", () => {
    for (const path of ["/aws/", "/AWS/reference/", "/ssm/", "/Ssm/x/", "/awsApp/", "/ssm-params/"])
      expect(pathProblem(path), path).toMatch(/cannot begin with "aws" or "ssm"/);
  });

  it("refuses a path deeper than AWS's fifteen levels allow with the variable's name", () => {
    expect(pathProblem(`/${Array.from({ length: 15 }, (_, i) => `l${i}`).join("/")}/`)).toMatch(/14 levels/);
  });
});
