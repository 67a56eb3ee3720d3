// A context for adapter tests: the real fetch (to the loopback doubles), a clock whose sleep returns at once and
// records each wait (so a Retry-After can be asserted without a test that waits), and the test context's CSPRNG.
import type { Context } from "../../../src/context.js";
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
