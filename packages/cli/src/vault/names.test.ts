import { describe, expect, it } from "vitest";
import { parseAssignment, validateEnvName, validateKeyName, validateValue } from "./names.js";

describe("secret and environment names", () => {
  it("accepts portable variable names and rejects the rest", () => {
    for (const ok of ["A", "_", "DATABASE_URL", "a1_b2"]) expect(validateKeyName(ok)).toBe(ok);
    for (const bad of ["", "1A", "A-B", "A.B", "A B", "Ä", "A=B", "A\0"]) {
      expect(() => validateKeyName(bad)).toThrow(expect.objectContaining({ code: "LK_ENV_KEY_INVALID" }));
    }
  });

  it("rejects NUL in values without echoing the value", () => {
    expect(() => validateValue("TOKEN", "sec\0ret-value")).toThrow(
      expect.objectContaining({
        code: "LK_ENV_VALUE_INVALID",
        message: "The value for TOKEN contains a NUL byte.",
      }),
    );
  });

  it("splits KEY=VALUE at the first = and keeps the rest of the value", () => {
    expect(parseAssignment("URL=postgres://u:p@h/db?x=1")).toEqual({
      key: "URL",
      value: "postgres://u:p@h/db?x=1",
    });
    expect(parseAssignment("EMPTY=")).toEqual({ key: "EMPTY", value: "" });
    expect(parseAssignment("BARE")).toEqual({ key: "BARE", value: undefined });
    expect(() => parseAssignment("=x")).toThrow(expect.objectContaining({ code: "LK_ENV_KEY_INVALID" }));
  });

  it("validates environment names", () => {
    for (const ok of ["default", "staging", "prod-eu.1", "QA_2"]) expect(validateEnvName(ok)).toBe(ok);
    for (const bad of ["", "-x", ".hidden", "a/b", "a b", "x".repeat(65)]) {
      expect(() => validateEnvName(bad)).toThrow(expect.objectContaining({ code: "LK_USAGE" }));
    }
  });
});
