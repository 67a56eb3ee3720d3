import { describe, expect, it } from "vitest";
import { envFileMention, yarnrcFinding } from "./handoff-yarnrc.js";

const A = "//127.0.0.1:4873/";
const V = "LATCHKEY_TOKEN_127_0_0_1_4873_ABCDEF12";
const handed = new Map([[V, A]]);
const own = `npmRegistries:\n  "${A}":\n    npmAuthToken: "\${${V}}"\n`;

describe("yarnrcFinding", () => {
  it("accepts the registry's own npmAuthToken and settings that name no handed variable", async () => {
    expect(await yarnrcFinding(own, handed, "linux")).toBeNull();
    expect(
      await yarnrcFinding(`${own}npmScopes:\n  s:\n    npmAuthToken: "\${S_TOKEN}"\n`, handed, "linux"),
    ).toBeNull();
    expect(await yarnrcFinding("", handed, "linux")).toBeNull();
  });

  it("finds a handed variable in a fallback, a key or another registry's entry, at its line", async () => {
    for (const [text, line] of [
      [`npmRegistries:\n  "//b.example/":\n    npmAuthToken: "\${UNSET:-\${${V}}}"\n`, 3],
      [`npmRegistries:\n  "//b.example/\${${V}}/":\n    npmAuthToken: x\n`, 2],
      [`npmRegistries:\n  "${A}":\n    npmAuthToken: "Bearer \${${V}}"\n`, 3],
      [`npmRegistries:\n  "${A}":\n    npmAlwaysAuth: "\${${V}}"\n`, 3],
    ] as const) {
      expect(await yarnrcFinding(text, handed, "linux"), text).toEqual({
        kind: "rerouted",
        line,
        variable: V,
        registry: A,
      });
    }
  });

  it("compares names as the platform does", async () => {
    const lower = `npmAuthToken: "\${${V.toLowerCase()}}"\n`;
    expect(await yarnrcFinding(lower, handed, "win32")).toMatchObject({ kind: "rerouted", line: 1 });
    // Elsewhere another, unset variable; still a mention of the name, so refused all the same.
    expect(await yarnrcFinding(lower, handed, "linux")).toMatchObject({ kind: "rerouted", line: 1 });
  });

  it("reads through aliases, recursive ones included, and reports where the alias is used", async () => {
    const text = `${own.replace(`"\${${V}}"`, `&t "\${${V}}"`)}npmScopes:\n  s:\n    npmAuthToken: *t\n`;
    expect(await yarnrcFinding(text, handed, "linux")).toMatchObject({ kind: "rerouted", line: 6 });
    expect(await yarnrcFinding("a: &a [*a]\n", handed, "linux")).toBeNull();
  });

  it("calls a file it would read otherwise than yarn unreadable, and injectEnvironmentFiles a file loader", async () => {
    expect(await yarnrcFinding("a: !custom x\n", handed, "linux")).toMatchObject({
      kind: "unreadable",
      line: 1,
    });
    expect(await yarnrcFinding('x: "a"\ny: [\n', handed, "linux")).toMatchObject({ kind: "unreadable" });
    expect(await yarnrcFinding("injectEnvironmentFiles:\n  - .env\n", handed, "linux")).toEqual({
      kind: "loads-file",
      line: 1,
      key: "injectEnvironmentFiles",
    });
    // Only at the top level is it the setting.
    expect(
      await yarnrcFinding("packageExtensions:\n  injectEnvironmentFiles: x\n", handed, "linux"),
    ).toBeNull();
  });
});

describe("envFileMention", () => {
  it("finds any line naming a handed variable, in any case", () => {
    expect(envFileMention(`A=1\nB=\${${V.toLowerCase()}}\n`, handed)).toEqual({ line: 2, variable: V });
    expect(envFileMention("A=${OTHER}\n", handed)).toBeNull();
  });
});
