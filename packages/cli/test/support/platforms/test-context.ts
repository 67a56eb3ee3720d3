// A context for adapter tests: the real fetch (to the loopback doubles), a clock whose sleep returns at once and
// records each wait (so a Retry-After can be asserted without a test that waits), and the test context's CSPRNG;
// and the push and failure helpers every adapter's tests share.
import { LatchkeyError } from "@latchkey/core";
import { expect } from "vitest";
import type { Context } from "../../../src/context.js";
import { applyPlanFor, planPush, type PlatformAdapter } from "../../../src/platforms/adapter.js";
import { createTestContext, type CapturedStream } from "../context.js";

/** A test context for platform adapters, with the waits its retries asked for. */
export function platformContext(
  now = Date.parse("2026-12-07T12:00:00Z"),
): Context & { stdout: CapturedStream; stderr: CapturedStream; sleeps: number[] } {
  const sleeps: number[] = [];
  const ctx = createTestContext({
    fetch: (input, init) => globalThis.fetch(input, init),
    clock: {
      now: () => now,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    },
  });
  return Object.assign(ctx, { sleeps });
}

/** A push as the command makes it: the plan from the target's names, then that plan applied. */
export async function push(adapter: PlatformAdapter, values: Record<string, string>, prune = false) {
  const plan = planPush(await adapter.listNames(), values, prune);
  return { plan, result: await adapter.apply(applyPlanFor(plan, values)) };
}

/** The LatchkeyError `promise` rejects with (a test fails if it resolves or rejects with anything else). */
export async function failure(promise: Promise<unknown>): Promise<LatchkeyError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LatchkeyError);
  return error as LatchkeyError;
}
