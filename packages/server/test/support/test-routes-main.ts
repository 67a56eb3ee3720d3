// `latchkey-server` as the process tests run it when they need what no shipped server offers:
// - GET /__test/slow logs "test.slow.waiting" and answers only once this process gets SIGUSR2 (a request held
//   open);
// - PUT /__test/clock {"offsetMs": N} sets the API routes' clock N milliseconds ahead of the real one (step-up
//   proofs and pairings expire without the test waiting five minutes); sign-in and tokens keep the real clock.
// Only the tests' own bundle has this entry (test-routes-bundle.ts): the shipped server has no such route and no
// way to add one.
import { runServerProcess } from "../../src/run-process.js";

const waiters = new Set<() => void>();
// Installed for the whole run: without a handler, SIGUSR2 would kill the process.
process.on("SIGUSR2", () => {
  for (const release of waiters) release();
  waiters.clear();
});
let clockOffsetMs = 0;
await runServerProcess({
  now: () => new Date(Date.now() + clockOffsetMs),
  testRoutes: (app) => {
    app.get("/__test/slow", async (request, reply) => {
      request.log.info({ event: "test.slow.waiting" }, "test route: holding the request until released");
      await new Promise<void>((done) => waiters.add(done));
      return reply.send({ status: "done" });
    });
    app.put<{ Body: { offsetMs?: unknown } }>("/__test/clock", async (request, reply) => {
      const offset = request.body?.offsetMs;
      if (typeof offset !== "number" || !Number.isSafeInteger(offset)) {
        return reply.code(400).send({ error: "offsetMs must be an integer" });
      }
      clockOffsetMs = offset;
      request.log.info({ event: "test.clock", offsetMs: offset }, "test route: the API clock moved");
      return reply.send({ offsetMs: offset });
    });
  },
});
