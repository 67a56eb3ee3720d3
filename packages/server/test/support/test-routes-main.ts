// `latchkey-server` as the process tests run it when they need a request held open: GET /__test/slow logs
// "test.slow.waiting" and answers only once this process gets SIGUSR2. Only the tests' own bundle has this entry
// (test-routes-bundle.ts): the shipped server has no such route and no way to add one.
import { runServerProcess } from "../../src/run-process.js";

const waiters = new Set<() => void>();
// Installed for the whole run: without a handler, SIGUSR2 would kill the process.
process.on("SIGUSR2", () => {
  for (const release of waiters) release();
  waiters.clear();
});
await runServerProcess({
  testRoutes: (app) => {
    app.get("/__test/slow", async (request, reply) => {
      request.log.info({ event: "test.slow.waiting" }, "test route: holding the request until released");
      await new Promise<void>((done) => waiters.add(done));
      return reply.send({ status: "done" });
    });
  },
});
