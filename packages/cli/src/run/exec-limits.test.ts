import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { LatchkeyError } from "@latchkey/core";
import {
  LINUX_MAX_ARG_STRLEN,
  checkExecSize,
  linuxStackLimit,
  linuxTotalLimit,
  systemExecLimits,
  type ExecLimits,
} from "./exec-limits.js";

const SECRET_CHAR = "q";

function refusal(run: () => void): LatchkeyError | null {
  try {
    run();
    return null;
  } catch (error) {
    if (!(error instanceof LatchkeyError)) throw error;
    return error;
  }
}

/** A value that makes `NAME=value` with its NUL exactly `size` bytes. */
const valueFor = (name: string, size: number): string => SECRET_CHAR.repeat(size - name.length - 2);

const linux: ExecLimits = { perString: LINUX_MAX_ARG_STRLEN, total: () => 2 * 1024 * 1024 };

describe("checkExecSize", () => {
  it("passes a variable of exactly the per-string limit and refuses one byte more, naming it, its size and the limit", () => {
    expect(refusal(() => checkExecSize("sh", [], { BIG: valueFor("BIG", 131_072) }, linux))).toBeNull();
    const error = refusal(() => checkExecSize("sh", ["-c", "x"], { BIG: valueFor("BIG", 131_073) }, linux));
    expect(error?.code).toBe("LK_RUN_ENV_TOO_LARGE");
    expect(error?.exitCode).toBe(126);
    expect(error?.message).toContain("BIG takes 131,073 bytes");
    expect(error?.message).toContain("at most 131,072 bytes");
    expect(error?.hint).toContain("--file BIG");
    expect(error?.details).toEqual({ variable: "BIG", bytes: 131_073, limit: 131_072 });
    // The value never appears, nor any long run of it.
    expect(JSON.stringify([error?.message, error?.hint, error?.details])).not.toContain(
      SECRET_CHAR.repeat(8),
    );
  });

  it("counts UTF-8 bytes, not characters", () => {
    const twoByte = "é".repeat(70_000);
    expect(refusal(() => checkExecSize("sh", [], { K: twoByte }, linux))?.code).toBe("LK_RUN_ENV_TOO_LARGE");
  });

  it("refuses an argument over the per-string limit by its position", () => {
    const error = refusal(() => checkExecSize("sh", ["-c", "x".repeat(200_000)], {}, linux));
    expect(error?.message).toContain("argument 2 takes 200,001 bytes");
  });

  it("refuses a total over the system's limit, naming the largest variables, and asks for the limit only then", () => {
    let asked = 0;
    const small: ExecLimits = {
      perString: LINUX_MAX_ARG_STRLEN,
      total: () => {
        asked++;
        return 256 * 1024;
      },
    };
    const env = { PATH: "/bin", A: "a".repeat(100_000), B: "b".repeat(90_000), C: "c".repeat(80_000) };
    expect(refusal(() => checkExecSize("sh", [], { PATH: "/bin", A: "a" }, small))).toBeNull();
    expect(asked).toBe(0);
    const error = refusal(() => checkExecSize("sh", [], env, small));
    expect(asked).toBe(1);
    expect(error?.code).toBe("LK_RUN_ENV_TOO_LARGE");
    expect(error?.message).toMatch(/take 270,0\d\d bytes/);
    expect(error?.message).toContain("A (100,003 bytes), B (90,003 bytes), C (80,003 bytes)");
  });

  it("has no per-string limit where the system has none", () => {
    const mac = systemExecLimits("darwin");
    expect(refusal(() => checkExecSize("sh", [], { BIG: "x".repeat(500_000) }, mac))).toBeNull();
    expect(refusal(() => checkExecSize("sh", [], { BIG: "x".repeat(2_000_000) }, mac))?.code).toBe(
      "LK_RUN_ENV_TOO_LARGE",
    );
  });
});

describe("Linux's total", () => {
  it("reads the stack soft limit from /proc/self/limits", () => {
    const text =
      "Limit                     Soft Limit           Hard Limit           Units     \n" +
      "Max stack size            8388608              unlimited            bytes     \n";
    expect(linuxStackLimit(text)).toBe(8_388_608);
    expect(linuxStackLimit(text.replace("8388608 ", "unlimited"))).toBe(Number.POSITIVE_INFINITY);
    expect(linuxStackLimit("")).toBeNull();
  });

  it("is a quarter of the stack limit, at least 128 KiB and at most 6 MiB, less a pointer per string", () => {
    expect(linuxTotalLimit(8 * 1024 * 1024, 0)).toBe(2 * 1024 * 1024);
    expect(linuxTotalLimit(8 * 1024 * 1024, 10)).toBe(2 * 1024 * 1024 - 80);
    expect(linuxTotalLimit(64 * 1024, 0)).toBe(128 * 1024);
    expect(linuxTotalLimit(Number.POSITIVE_INFINITY, 0)).toBe(6 * 1024 * 1024);
    expect(linuxTotalLimit(null, 0)).toBe(2 * 1024 * 1024);
  });
});

describe.runIf(process.platform === "linux")("agrees with the kernel", () => {
  // The check exists because execve's E2BIG aborts `run`: it must refuse what the kernel refuses, and no more.
  for (const size of [131_072, 131_073]) {
    it(`on a variable of ${size} bytes`, () => {
      const env = { K: valueFor("K", size) };
      const started = spawnSync("/bin/sh", ["-c", "exit 0"], { env });
      const refused = refusal(() => checkExecSize("/bin/sh", ["-c", "exit 0"], env));
      expect(started.error === undefined ? "started" : (started.error as NodeJS.ErrnoException).code).toBe(
        refused === null ? "started" : "E2BIG",
      );
    });
  }

  it("on the total: both start a little under this process's limit and both refuse a little over it", () => {
    const argv = ["-c", "exit 0"];
    const fill = (total: number): Record<string, string> => {
      // Variables of 100,000 bytes each, under the per-string limit, then one for the rest.
      const env: Record<string, string> = {};
      let left = total - ("/bin/sh".length + 1) * 2 - 3 - 7;
      for (let i = 0; left > 0; i++) {
        const name = `V${String(i).padStart(3, "0")}`;
        const size = Math.min(100_000, left);
        env[name] = "v".repeat(Math.max(size - name.length - 2, 0));
        left -= size;
      }
      return env;
    };
    const outcome = (env: Record<string, string>): [string, string] => {
      const started = spawnSync("/bin/sh", argv, { env });
      const refused = refusal(() => checkExecSize("/bin/sh", argv, env));
      return [
        refused === null ? "started" : "E2BIG",
        started.error === undefined ? "started" : String((started.error as NodeJS.ErrnoException).code),
      ];
    };
    const limit = systemExecLimits().total(40);
    expect(limit).not.toBeNull();
    expect(outcome(fill(limit! - 16 * 1024))).toEqual(["started", "started"]);
    expect(outcome(fill(limit! + 16 * 1024))).toEqual(["E2BIG", "E2BIG"]);
  });
});
