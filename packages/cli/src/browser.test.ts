import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext } from "../test/support/context.js";
import { browserUnavailable } from "./browser.js";

let bin: string;
beforeAll(async () => {
  bin = await mkdtemp(join(tmpdir(), "lk-browser-"));
  await writeFile(join(bin, "xdg-open"), "#!/bin/sh\nexit 0\n");
  await chmod(join(bin, "xdg-open"), 0o755);
});
afterAll(async () => {
  await rm(bin, { recursive: true, force: true });
});

const on = (os: NodeJS.Platform, env: Record<string, string>) =>
  browserUnavailable(
    createTestContext({ env, platform: { nodeVersion: "24.0.0", os, uid: null, machineIdPaths: [] } }),
  );

describe("browserUnavailable", () => {
  it("on Linux needs a display and xdg-open", () => {
    expect(on("linux", { PATH: bin })).toMatch(/no display/);
    expect(on("linux", { PATH: "/nonexistent/latchkey-test", DISPLAY: ":0" })).toMatch(/xdg-open/);
    expect(on("linux", { PATH: bin, DISPLAY: ":0" })).toBeNull();
    expect(on("linux", { PATH: bin, WAYLAND_DISPLAY: "wayland-0" })).toBeNull();
  });

  it("trusts BROWSER, and a macOS or Windows desktop", () => {
    expect(on("linux", { BROWSER: "/usr/bin/true" })).toBeNull();
    expect(on("darwin", {})).toBeNull();
    expect(on("win32", {})).toBeNull();
  });
});
