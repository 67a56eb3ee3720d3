// A suite that needs a system part (a Secret Service, git, docker…) skips with a warning line where the part is
// missing, and fails under CI=true, where .ci/run installs everything: a skipped suite must never pass CI.
import { describe, expect, it } from "vitest";

/** The outcome of looking for a system part. */
export interface PartCheck {
  readonly ok: boolean;
  readonly reason?: string;
}

/**
 * Declares the CI prerequisite test for `suite` and warns locally when the part is missing. Returns whether the
 * suite can run, for `describe.skipIf(!…)`.
 */
export function requirePart(suite: string, check: PartCheck): boolean {
  const mustRun = process.env.CI === "true";
  if (!check.ok && !mustRun) console.warn(`skipping ${suite}: ${check.reason}`);
  describe(`prerequisites of ${suite}`, () => {
    it.runIf(mustRun)("are installed in CI (a skipped suite is a failure there)", () => {
      expect(check.reason ?? "available").toBe("available");
    });
  });
  return check.ok;
}
