import { spawn } from "node:child_process";
import { chmod, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { bundleForTest } from "../../../../e2e/support/bundle.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isLatchkeyError } from "@latchkey/core";
import { exitStatus, FORWARDED_SIGNALS, runChild } from "./child.js";

// Real processes throughout: a bundled stand-in for `latchkey run` (run-fixtures/parent.ts) starts the
// fixture program (run-fixtures/child.ts), so signals, exit statuses and descriptors are the kernel's.
const posix = process.platform === "win32" ? describe.skip : describe;
const fixtures = fileURLToPath(new URL("../../test/support/run-fixtures/", import.meta.url));
const childScript = join(fixtures, "child.ts");
const SECRET = "s3cr3t-välue-😀-42";

let dir: string;
let parentScript: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-run-"));
  parentScript = join(dir, "parent.js");
  // Node strips types but cannot follow `.js` specifiers to `.ts` sources or @latchkey/core's `source` export.
  await bundleForTest({ entryPoints: [join(fixtures, "parent.ts")], outfile: parentScript });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface ParentOptions {
  env?: Record<string, string>;
  stdout?: number;
  wrap?: (argv: string[]) => string[];
}

/** The fixture program with these steps, as the command line after `--`. */
function fixture(...steps: string[]): string[] {
  return [process.execPath, childScript, ...steps];
}

/**
 * Starts the parent stand-in: `parent.js [parentArgs…] -- program…` with a minimal environment plus `env`.
 * `waitFor(text)` resolves once stdout contains `text`.
 */
function startParent(parentArgs: readonly string[], program: readonly string[], options: ParentOptions = {}) {
  const argv = [process.execPath, parentScript, ...parentArgs, "--", ...program];
  const [command, ...args] = options.wrap ? options.wrap(argv) : argv;
  const parent = spawn(command as string, args, {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...options.env },
    stdio: ["pipe", options.stdout ?? "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters: { text: string; resolve: () => void }[] = [];
  parent.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    for (const waiter of waiters.filter((w) => stdout.includes(w.text))) waiter.resolve();
  });
  parent.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const finished = new Promise<Finished>((resolve) => {
    parent.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const waitFor = (text: string): Promise<void> =>
    stdout.includes(text) ? Promise.resolve() : new Promise((resolve) => waiters.push({ text, resolve }));
  return { parent, finished, waitFor };
}

function runParent(
  parentArgs: readonly string[],
  program: readonly string[],
  options: ParentOptions = {},
): Promise<Finished> {
  const { parent, finished } = startParent(parentArgs, program, options);
  parent.stdin?.end();
  return finished;
}

posix("latchkey run, as a process", () => {
  it.each([0, 3, 255])("exits with the program's exit code %i", async (code) => {
    const result = await runParent([], fixture(`exit:${code}`));
    expect(result).toMatchObject({ code, signal: null });
  });

  it.each(["SIGKILL", "SIGTERM", "SIGPIPE"] as const)(
    "dies of %s when the program did (re-raised; SIGPIPE too, though Node ignores it)",
    async (signal) => {
      const result = await runParent([], fixture(`kill:${signal}`));
      expect(result).toMatchObject({ code: null, signal });
    },
  );

  it("exits 128 + n instead of re-raising a core-dumping signal, so no core file holds the secrets", async () => {
    const result = await runParent([], fixture("kill:SIGABRT"), {
      // A core-dumping program must not leave a core file behind in the test either.
      wrap: (argv) => ["/bin/sh", "-c", 'ulimit -c 0; exec "$@"', "sh", ...argv],
    });
    expect(result).toMatchObject({ code: 134, signal: null });
  });

  it.each(["SIGINT", "SIGTERM", "SIGHUP"] as const)(
    "forwards %s to the program, which decides: it traps it and exits 0",
    async (signal) => {
      const { parent, finished, waitFor } = startParent([], fixture("trap:SIGINT,SIGTERM,SIGHUP"));
      parent.stdin?.end();
      await waitFor("ready\n");
      parent.kill(signal);
      const result = await finished;
      expect(result).toMatchObject({ code: 0, signal: null });
      expect(result.stdout).toBe(`ready\ngot ${signal}\n`);
    },
  );

  it("forwards SIGTERM to a program that does not trap it, then dies of it too", async () => {
    const { parent, finished, waitFor } = startParent([], fixture("out:ready\n", "sleep:30000"));
    parent.stdin?.end();
    await waitFor("ready\n");
    parent.kill("SIGTERM");
    expect(await finished).toMatchObject({ code: null, signal: "SIGTERM" });
  });

  it("gives the program its stdin", async () => {
    const { parent, finished } = startParent([], fixture("cat"));
    parent.stdin?.end("line one\nline two\n");
    expect(await finished).toMatchObject({ code: 0, stdout: "line one\nline two\n" });
  });

  it("puts the secret in the program's environment and nowhere in its argv", async () => {
    const result = await runParent([], fixture("env", "cmdline"), { env: { LK_TEST_SECRET: SECRET } });
    const [envLine, cmdlineLine] = result.stdout.trimEnd().split("\n");
    expect(JSON.parse(envLine as string)).toMatchObject({ LK_TEST_SECRET: SECRET });
    const cmdline = JSON.parse(cmdlineLine as string) as string[];
    expect(cmdline).toEqual([process.execPath, childScript, "env", "cmdline"]);
    expect(cmdline.join("\0")).not.toContain(SECRET);
  });

  it("masks the secret on stdout and stderr, even split inside a character across delayed writes", async () => {
    const bytes = Buffer.byteLength(SECRET, "utf8");
    // Byte 16 falls inside the emoji (bytes 14..17), byte 9 inside the ä (bytes 8..9).
    const result = await runParent(
      ["--mask", "LK_TEST_SECRET"],
      fixture(
        "out:token=",
        "outenv:LK_TEST_SECRET:0:16",
        "sleep:50",
        `outenv:LK_TEST_SECRET:16:${bytes}`,
        "out:;\n",
        "errenv:LK_TEST_SECRET:0:9",
        "sleep:50",
        `errenv:LK_TEST_SECRET:9:${bytes}`,
        "err: failed\n",
      ),
      { env: { LK_TEST_SECRET: SECRET } },
    );
    expect(result).toMatchObject({ code: 0, stdout: "token=*****;\n", stderr: "***** failed\n" });
  });

  it("shares its own stdout with the program unless masking, when the program sees a pipe", async () => {
    const outFile = join(dir, "stdout.txt");
    for (const [args, expected] of [
      [[], /^file\n$/],
      [["--mask", "LK_TEST_SECRET"], /^(fifo|socket)\n$/],
    ] as const) {
      const handle = await open(outFile, "w");
      try {
        const result = await runParent(args, fixture("fd:1"), {
          stdout: handle.fd,
          env: { LK_TEST_SECRET: SECRET },
        });
        expect(result.code).toBe(0);
      } finally {
        await handle.close();
      }
      expect(await readFile(outFile, "utf8")).toMatch(expected);
    }
  });

  it("lets the program meet a broken pipe when its masked stdout's reader goes away", async () => {
    const { parent, finished, waitFor } = startParent(["--mask", "LK_TEST_SECRET"], fixture("flood"), {
      env: { LK_TEST_SECRET: SECRET },
    });
    parent.stdin?.end();
    await waitFor("y");
    parent.stdout?.destroy();
    expect(await finished).toMatchObject({ code: 32, signal: null });
  });

  it("exits 127 naming the program when there is no such program", async () => {
    const result = await runParent([], ["latchkey-test-no-such-program"], {
      env: { PATH: dir, LK_TEST_SECRET: SECRET },
    });
    expect(result.code).toBe(127);
    expect(result.stderr).toContain('LK_RUN_NOT_FOUND Could not start "latchkey-test-no-such-program"');
    expect(result.stderr).not.toContain(SECRET);
  });
});

describe("runChild", () => {
  const quiet = { stdin: "ignore" } as const;

  it("gives the program exactly the environment passed, and reports its exit", async () => {
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    const result = await runChild({
      command: process.execPath,
      args: [childScript, "env", "exit:7"],
      env: { ONLY_THIS: "1", LK_TEST_SECRET: SECRET },
      stdio: { ...quiet, stdout },
    });
    expect(result).toEqual({ code: 7, signal: null });
    expect(JSON.parse(Buffer.concat(chunks).toString("utf8"))).toEqual({
      ONLY_THIS: "1",
      LK_TEST_SECRET: SECRET,
    });
  });

  it("masks into the given streams", async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on("data", (chunk: Buffer) => out.push(chunk));
    stderr.on("data", (chunk: Buffer) => err.push(chunk));
    const result = await runChild({
      command: process.execPath,
      args: [childScript, "outenv:S:0:100", "errenv:S:0:100"],
      env: { S: SECRET },
      mask: [SECRET, ""],
      stdio: { ...quiet, stdout, stderr },
    });
    expect(result).toEqual({ code: 0, signal: null });
    expect(Buffer.concat(out).toString("utf8")).toBe("*****");
    expect(Buffer.concat(err).toString("utf8")).toBe("*****");
  });

  it("removes its signal handlers once the program has exited", async () => {
    const before = FORWARDED_SIGNALS.map((signal) => process.listenerCount(signal));
    await runChild({ command: process.execPath, args: [childScript, "exit:0"], env: {}, stdio: quiet });
    expect(FORWARDED_SIGNALS.map((signal) => process.listenerCount(signal))).toEqual(before);
  });

  it("throws LK_RUN_NOT_FOUND (exit 127) naming the program, not the environment", async () => {
    const before = FORWARDED_SIGNALS.map((signal) => process.listenerCount(signal));
    const error: unknown = await runChild({
      command: "latchkey-test-no-such-program",
      args: [],
      env: { PATH: dir, LK_TEST_SECRET: SECRET },
      stdio: quiet,
    }).catch((e: unknown) => e);
    expect(isLatchkeyError(error, "LK_RUN_NOT_FOUND")).toBe(true);
    if (!isLatchkeyError(error)) return;
    expect(error.exitCode).toBe(127);
    expect(error.message).toContain('"latchkey-test-no-such-program"');
    expect(JSON.stringify(error.toJSON())).not.toContain(SECRET);
    expect(FORWARDED_SIGNALS.map((signal) => process.listenerCount(signal))).toEqual(before);
  });

  it("throws LK_RUN_FAILED (exit 126) for a file that is not executable", async () => {
    const script = join(dir, "not-executable.sh");
    await writeFile(script, "#!/bin/sh\nexit 0\n");
    await chmod(script, 0o644);
    const error: unknown = await runChild({ command: script, args: [], env: {}, stdio: quiet }).catch(
      (e: unknown) => e,
    );
    expect(isLatchkeyError(error, "LK_RUN_FAILED")).toBe(true);
    if (!isLatchkeyError(error)) return;
    expect(error.exitCode).toBe(126);
    expect(error.message).toContain(script);
  });

  it("refuses a NUL in a value without quoting the value", async () => {
    const error: unknown = await runChild({
      command: process.execPath,
      args: [childScript],
      env: { LK_TEST_SECRET: `${SECRET}\0tail` },
      stdio: quiet,
    }).catch((e: unknown) => e);
    expect(isLatchkeyError(error, "LK_RUN_FAILED")).toBe(true);
    if (!isLatchkeyError(error)) return;
    expect(error.message).toContain("LK_TEST_SECRET");
    expect(JSON.stringify(error.toJSON())).not.toContain(SECRET);
  });
});

describe("exitStatus", () => {
  it("is the exit code, or 128 + the signal number as a shell reports it", () => {
    expect(exitStatus({ code: 3, signal: null })).toBe(3);
    expect(exitStatus({ code: null, signal: "SIGTERM" })).toBe(143);
    expect(exitStatus({ code: null, signal: "SIGKILL" })).toBe(137);
  });
});
