// Output larger than a pipe's buffer must reach a slow reader whole: the CLI exits explicitly, and an exit
// before stdout drained used to cut `env export` and `env list` off at 64 KiB.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mkdir, writeFile } from "node:fs/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { NO_DBUS, isolatedEnv, runCli, startCli, tempDir } from "./support/cli.js";

let dir: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  dir = await tempDir("lk-e2e-output-");
});
afterAll(() => dir.cleanup());

it("writes all of a large export to a pipe whose reader starts late", async () => {
  const project = join(dir.path, "project");
  const env = isolatedEnv({
    HOME: dir.path,
    LATCHKEY_HOME: join(dir.path, "home"),
    LATCHKEY_KEYSTORE: "file",
    DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
  });
  await mkdir(project);
  await writeFile(join(project, "package.json"), "{}\n");
  const lines = Array.from({ length: 5000 }, (_, i) => `KEY_${i}=value-${i}-${"x".repeat(20)}`);
  await writeFile(join(project, "big.env"), `${lines.join("\n")}\n`);
  const imported = await runCli(["env", "import", "big.env"], { env, cwd: project });
  expect(imported.code, imported.stderr).toBe(0);

  const child = startCli(["env", "export", "--format", "dotenv"], { env, cwd: project });
  child.stdout!.pause();
  await sleep(300);
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stdout!.resume();
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  expect(code).toBe(0);
  expect(out.length).toBeGreaterThan(128 * 1024);
  expect(out.trimEnd().split("\n")).toHaveLength(5000);
});

it("ends quietly when the reader of its output goes away", async () => {
  const env = isolatedEnv({
    HOME: dir.path,
    LATCHKEY_HOME: join(dir.path, "home"),
    LATCHKEY_KEYSTORE: "file",
    DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
  });
  for (const args of [["--help"], ["--version"], ["env", "export", "--format", "dotenv"]]) {
    const child = startCli(args, { env, cwd: join(dir.path, "project") });
    // Closed before the CLI writes: every write it makes meets EPIPE.
    child.stdout!.destroy();
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(stderr, args.join(" ")).not.toMatch(/EPIPE|\n\s+at /);
    expect(code, args.join(" ")).toBe(0);
  }
});
