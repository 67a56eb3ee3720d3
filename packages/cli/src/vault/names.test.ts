import { describe, expect, it } from "vitest";
import {
  checkReservedNames,
  checkReservedName,
  isReservedName,
  parseAssignment,
  sameNameOtherCase,
  validateEnvName,
  validateKeyName,
  validateValue,
} from "./names.js";

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

  it("reserves the names programs rely on to start or to choose their code, unless overriding is allowed", () => {
    for (const name of [
      "PATH",
      "HOME",
      "LD_PRELOAD",
      "LD_LIBRARY_PATH",
      "DYLD_INSERT_LIBRARIES",
      "NODE_OPTIONS",
    ])
      expect(isReservedName(name, "linux"), name).toBe(true);
    for (const name of ["BASH_ENV", "PYTHONPATH", "JAVA_TOOL_OPTIONS", "LATCHKEY_HOME", "LATCHKEY_VAULT_ID"])
      expect(isReservedName(name, undefined), name).toBe(true);
    for (const name of [
      "DATABASE_URL",
      "path",
      "Path",
      "ld_preload",
      "HOME_URL",
      "MY_PATH",
      "NODE_ENV",
      "API_KEY",
    ])
      expect(isReservedName(name, "linux"), name).toBe(false);
    expect(() => checkReservedName("LD_PRELOAD", false, "linux")).toThrow(
      expect.objectContaining({ code: "LK_ENV_KEY_RESERVED" }),
    );
    expect(() => checkReservedName("LD_PRELOAD", true, "linux")).not.toThrow();
    expect(() => checkReservedName("DATABASE_URL", false, "linux")).not.toThrow();
  });

  it("compares reserved names the way Windows compares variable names, in any case", () => {
    for (const name of ["Path", "path", "Node_Options", "ld_preload", "Latchkey_Home", "bash_env"])
      expect(isReservedName(name, "win32"), name).toBe(true);
    for (const name of ["MY_PATH", "node_env"]) expect(isReservedName(name, "win32"), name).toBe(false);
    expect(() => checkReservedName("Path", false, "win32")).toThrow(
      expect.objectContaining({ code: "LK_ENV_KEY_RESERVED" }),
    );
  });

  it("refuses to start a program the vault gives reserved names, naming them and not their values", () => {
    const run = { kind: "run", program: "node" } as const;
    expect(() => checkReservedNames(run, "staging", ["API_KEY", "PORT"], "linux")).not.toThrow();
    let error: unknown;
    try {
      checkReservedNames(run, "staging", ["PATH", "API_KEY", "NODE_OPTIONS"], "linux");
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({
      code: "LK_ENV_KEY_RESERVED",
      message: expect.stringContaining("Not starting node: staging would set NODE_OPTIONS, PATH,"),
      hint: expect.stringContaining("--allow-override"),
      details: { environment: "staging", keys: ["NODE_OPTIONS", "PATH"] },
    });
    expect((error as { hint: string }).hint).toContain("latchkey env unset --env staging NODE_OPTIONS PATH");
  });

  it("refuses shell exports of reserved names, which `eval` would set in the user's own shell", () => {
    expect(() =>
      checkReservedNames({ kind: "export-shell" }, "default", ["LD_PRELOAD", "API_KEY"], "linux"),
    ).toThrow(
      expect.objectContaining({
        code: "LK_ENV_KEY_RESERVED",
        message: expect.stringContaining("Not printing shell exports: default would set LD_PRELOAD,"),
        hint: expect.stringContaining("--allow-override to `latchkey env export --format shell`"),
      }),
    );
  });

  it("finds a name that differs only in case, for a did-you-mean", () => {
    expect(sameNameOtherCase("Staging", ["prod", "staging"])).toBe("staging");
    expect(sameNameOtherCase("database_url", ["DATABASE_URL", "API_KEY"])).toBe("DATABASE_URL");
    expect(sameNameOtherCase("staging", ["staging"])).toBeUndefined();
    expect(sameNameOtherCase("stage", ["staging"])).toBeUndefined();
  });
});
