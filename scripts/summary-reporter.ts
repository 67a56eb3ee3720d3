// Closes the test run with the plain line CI reads ("N passed, N failed, N skipped"), and under CI=true turns
// any skipped test into a failure: a suite that skipped for a missing component tested nothing.
import type { Reporter, TestModule } from "vitest/node";

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    const skipped: string[] = [];
    for (const module of testModules) {
      if (module.state() === "failed" && [...module.children.allTests()].length === 0) failed++;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else if (state === "skipped") skipped.push(`${module.moduleId}: ${test.fullName}`);
      }
    }
    failed += unhandledErrors.length;
    if (process.env.CI === "true" && skipped.length > 0) {
      process.stderr.write(`\nCI=true: ${skipped.length} skipped test(s) count as failures:\n`);
      for (const name of skipped) process.stderr.write(`  - ${name}\n`);
      failed += skipped.length;
      process.exitCode = 1;
    }
    process.stdout.write(`\nTests: ${passed} passed, ${failed} failed, ${skipped.length} skipped\n`);
  }
}
