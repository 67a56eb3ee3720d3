import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import { lstat, mkdtemp, open, rm, rmdir, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { isLatchkeyError } from "@latchkey/core";
import { bundleFsModules, fsChildScript } from "../../test/support/fs-bundle.js";
import { LOCK_STALE_MS, withFileLock } from "./lock.js";
import { readFileSafe, writeFileAtomic } from "./safe-file.js";

const posixOnly = process.platform === "win32" ? it.skip : it;

let dir: string;
let target: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-lock-"));
  target = join(dir, "store.enc");
});
afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

let bundleDir: string;
beforeAll(async () => {
  bundleDir = await mkdtemp(join(tmpdir(), "latchkey-fs-bundle-"));
  await bundleFsModules(bundleDir);
});
afterAll(async () => {
  await rm(bundleDir, { recursive: true, force: true });
});

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function readCount(path: string): Promise<number> {
  const bytes = await readFileSafe(path);
  return bytes === null ? 0 : Number(Buffer.from(bytes).toString("utf8"));
}

/**
 * One read-modify-write increment under the lock, the same protocol as fs-child.ts `increment`: a marker
 * created with O_EXCL fails if another holder (in any process) is inside the lock at the same time.
 */
async function incrementUnderLock(path: string): Promise<{ overlapped: boolean }> {
  return withFileLock(path, async () => {
    const held = await open(`${path}.holder`, "wx").catch(() => null);
    const count = await readCount(path);
    await sleep(1);
    await writeFileAtomic(path, String(count + 1));
    if (held !== null) {
      await held.close();
      await unlink(`${path}.holder`);
    }
    return { overlapped: held === null };
  });
}

function runChild(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [fsChildScript, bundleDir, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, stdout, stderr }));
  });
}

async function expectLatchkeyError(promise: Promise<unknown>, code: string): Promise<Error> {
  const err: unknown = await promise.then(
    () => new Error("expected a rejection"),
    (e: unknown) => e,
  );
  expect(isLatchkeyError(err) ? err.code : err).toBe(code);
  return err as Error;
}

describe("withFileLock", () => {
  it("serializes 32 concurrent holders in one process: no lost update", async () => {
    let inside = 0;
    let maxInside = 0;
    const results = await Promise.all(
      Array.from({ length: 32 }, () =>
        withFileLock(target, async () => {
          maxInside = Math.max(maxInside, ++inside);
          const count = await readCount(target);
          await sleep(1);
          await writeFileAtomic(target, String(count + 1));
          inside--;
          return count;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect(await readCount(target)).toBe(32);
    expect(new Set(results).size).toBe(32);
    expect(await exists(`${target}.lock`)).toBe(false);
  });

  it("serializes 32 contending processes: no lost update, never two holders", async () => {
    const processes = 32;
    const times = 5;
    const results = await Promise.all(
      Array.from({ length: processes }, () => runChild(["increment", target, String(times)])),
    );
    for (const result of results) {
      expect(result).toEqual({ code: 0, stdout: '{"overlaps":0}\n', stderr: "" });
    }
    expect(await readCount(target)).toBe(processes * times);
  });

  it("releases the lock when fn throws and passes the error through", async () => {
    const failure = new Error("inside");
    await expect(
      withFileLock(target, () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await exists(`${target}.lock`)).toBe(false);
    expect(await withFileLock(target, () => Promise.resolve("next"), { timeoutMs: 0 })).toBe("next");
  });

  it("fails with LK_LOCK_TIMEOUT naming the target while another holder keeps it", async () => {
    let releaseHolder!: () => void;
    const holding = new Promise<void>((resolveHolding) => (releaseHolder = resolveHolding));
    let entered!: () => void;
    const hasEntered = new Promise<void>((resolveEntered) => (entered = resolveEntered));
    const holder = withFileLock(target, async () => {
      entered();
      await holding;
    });
    await hasEntered;

    // The lock's clock stands still unless the test moves it; its retries wait for real. Each retry is an
    // attempt to make the lock directory.
    vi.useFakeTimers({ toFake: ["Date"] });
    const start = Date.now();
    const mkdir = vi.spyOn(fs, "mkdir");
    const attempts = () => mkdir.mock.calls.filter(([path]) => path === `${target}.lock`).length;
    let outcome: unknown = "pending";
    const retried = async (more: number): Promise<void> => {
      const goal = attempts() + more;
      while (attempts() < goal && outcome === "pending") await sleep(5);
    };
    void withFileLock(target, () => Promise.resolve(), { timeoutMs: 300 }).then(
      () => (outcome = "acquired"),
      (error: unknown) => (outcome = error),
    );
    await retried(3);
    expect(outcome).toBe("pending");
    vi.setSystemTime(start + 299);
    await retried(2);
    expect(outcome).toBe("pending");
    vi.setSystemTime(start + 300);
    // The next attempt is the last: it fails, and there is no time left.
    await retried(2);
    expect(outcome).toMatchObject({
      code: "LK_LOCK_TIMEOUT",
      message: expect.stringContaining(target) as unknown,
      details: { timeoutMs: 300 },
    });
    vi.useRealTimers();

    await expectLatchkeyError(
      withFileLock(target, () => Promise.resolve(), { timeoutMs: 0 }),
      "LK_LOCK_TIMEOUT",
    );

    releaseHolder();
    await holder;
    expect(await exists(`${target}.lock`)).toBe(false);
  });

  it("fails with LK_FILE_IO when the target's directory does not exist", async () => {
    const missing = join(dir, "missing", "store.enc");
    const err = await expectLatchkeyError(
      withFileLock(missing, () => Promise.resolve()),
      "LK_FILE_IO",
    );
    expect(err.message).toContain(missing);
  });

  it("turns a lost lock into an abort signal and an error for the holder, not a crash", async () => {
    let sawAbort = false;
    const err = await expectLatchkeyError(
      withFileLock(target, async (signal) => {
        // Simulates another process deleting the lock out from under this holder.
        await rmdir(`${target}.lock`);
        const deadline = Date.now() + LOCK_STALE_MS;
        while (!signal.aborted && Date.now() < deadline) await sleep(50);
        sawAbort = signal.aborted;
        return "finished anyway";
      }),
      "LK_LOCK_TIMEOUT",
    );
    expect(sawAbort).toBe(true);
    expect(err.message).toContain(target);
    expect(await withFileLock(target, () => Promise.resolve("usable again"), { timeoutMs: 0 })).toBe(
      "usable again",
    );
  });

  posixOnly(
    "takes over a lock left by a holder killed with SIGKILL, with one winner among many waiters",
    async () => {
      const holder = spawn(process.execPath, [fsChildScript, bundleDir, "hold", target], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      await waitForLine(holder, "locked");
      holder.kill("SIGKILL");
      await new Promise((resolveExit) => holder.once("exit", resolveExit));
      expect(await exists(`${target}.lock`)).toBe(true);

      // Everyone reaches the stale lock at about the same moment: only one may take it over.
      // With proper-lockfile's own stale removal, 16 such waiters produced overlapping holders in 4 of 10 trials.
      const children = Array.from({ length: 15 }, () => runChild(["increment", target, "2"]));
      const mine = incrementUnderLock(target);
      const [own, ...theirs] = await Promise.all([mine, ...children]);

      // Every waiter got the lock within its time limit (the default, three times LOCK_STALE_MS): none failed
      // with LK_LOCK_TIMEOUT, and none overlapped another.
      expect(own).toEqual({ overlapped: false });
      for (const result of theirs)
        expect(result).toEqual({ code: 0, stdout: '{"overlaps":0}\n', stderr: "" });
      expect(await readCount(target)).toBe(1 + 15 * 2);
      expect(await exists(`${target}.lock`)).toBe(false);
      expect(await exists(`${target}.lock.steal`)).toBe(false);
    },
  );
});

function waitForLine(child: ChildProcess, line: string): Promise<void> {
  return new Promise((resolveLine, reject) => {
    let buffered = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      if (buffered.split("\n").includes(line)) resolveLine();
    });
    child.once("exit", (code) => reject(new Error(`child exited (${code}) before printing ${line}`)));
  });
}
