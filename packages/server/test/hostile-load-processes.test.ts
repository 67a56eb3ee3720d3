// The built `latchkey-server` process (SQLite) under hostile load: bodies within the 8 MiB push limit built to
// be costly to parse, and SIGTERM while such load, or an upload answered before its body had arrived, is still
// in flight. Memory is read from the process's own /proc/<pid>/status, so it counts all the process holds.
import { randomUUID } from "node:crypto";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { createIdentity } from "../src/identity/identity.js";
import { PUSH_BODY_LIMIT } from "../src/api/params.js";
import { createTestUser, mintAccessToken, TEST_SERVER_SECRET } from "./support/identity.js";
import {
  apiHeaders,
  openMigrated,
  pushBody,
  startServerProcess,
  type ServerProcess,
} from "./sync-support.js";

const PUBLIC_URL = "http://latchkey.test";
/** Parallel hostile requests. */
const PARALLEL = 16;
/**
 * Bound on the growth of the process's peak memory over 16 hostile bodies: 37 MiB each would do. Before the
 * JSON depth scan, JSON.parse built hundreds of megabytes per body (about 3 GB for the 16).
 */
const MAX_PEAK_GROWTH_KB = 600 * 1024;
/**
 * The SIGTERM tests' time limit. A SIGTERM'd server that has not finished its requests by the end of
 * SHUTDOWN_GRACE_MS (30 s) exits 1, so its exit code, not a clock here, says whether it shut down cleanly; the limit
 * leaves room for that grace after the load has started, so an overrun shows as exit 1 rather than as a timeout.
 */
const SIGTERM_TEST = { timeout: 120_000 };

/** A push body of at most PUSH_BODY_LIMIT bytes whose ignored extra field is arrays nested as deep as fits. */
function hostileBody(): string {
  const head = `${JSON.stringify(pushBody("AAAA", 0)).slice(0, -1)},"padding":`;
  const levels = Math.floor((PUSH_BODY_LIMIT - head.length - 1) / 2);
  return `${head}${"[".repeat(levels)}${"]".repeat(levels)}}`;
}

/** A field of /proc/<pid>/status in kB (VmRSS: now, VmHWM: the peak so far). */
async function memoryKb(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}

/** The server's pid, from its JSON log lines. */
function pidOf(server: ServerProcess): number {
  const match = /"pid":(\d+)/.exec(server.output());
  if (match === null) throw new Error(`no pid in the server's log:\n${server.output()}`);
  return Number(match[1]);
}

describe("latchkey-server process under hostile load", () => {
  let dir: string;
  let database: OpenDatabase;
  let token: string;
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lk-hostile-"));
    database = await openMigrated({ dataDir: dir });
    const identity = createIdentity({ db: database.db, secret: TEST_SERVER_SECRET, publicUrl: PUBLIC_URL });
    const user = await createTestUser(database.db, `${randomUUID()}@example.test`, `pw-${randomUUID()}`);
    token = await mintAccessToken(identity, { userId: user.userId });
  });
  afterEach(async () => {
    // A test that failed early may leave its server running; SIGTERM ends it within its grace.
    for (const server of servers.splice(0)) await server.stop();
  });
  afterAll(async () => {
    await database?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const start = async (): Promise<ServerProcess> => {
    const server = await startServerProcess(dir, {
      LATCHKEY_SERVER_SECRET: TEST_SERVER_SECRET,
      PUBLIC_URL,
    });
    servers.push(server);
    // An ordinary push first: the token passes, so the hostile bodies below are read and parsed, not refused
    // at the door; and the baseline memory includes a warmed-up server.
    const warm = await push(server, JSON.stringify(pushBody("AAAA", 0)));
    expect(warm, server.output()).toBe(200);
    return server;
  };
  const push = async (server: ServerProcess, body: string): Promise<number> => {
    const res = await fetch(`${server.url}/api/v1/vaults/${randomUUID()}`, {
      method: "PUT",
      headers: { ...apiHeaders(token), "content-type": "application/json" },
      body,
    });
    await res.arrayBuffer();
    return res.status;
  };

  it("answers 16 parallel 8 MiB bodies of deep arrays with 400, its peak memory far below their parsed size", async () => {
    const server = await start();
    const pid = pidOf(server);
    const body = hostileBody();
    expect(body.length).toBeGreaterThan(PUSH_BODY_LIMIT - 2);
    expect(body.length).toBeLessThanOrEqual(PUSH_BODY_LIMIT);
    const before = await memoryKb(pid, "VmRSS");
    const statuses = await Promise.all(Array.from({ length: PARALLEL }, () => push(server, body)));
    const peak = await memoryKb(pid, "VmHWM");
    expect(statuses).toEqual(Array.from({ length: PARALLEL }, () => 400));
    const growth = peak - before;
    expect(growth, `peak memory grew by ${Math.round(growth / 1024)} MiB`).toBeLessThan(MAX_PEAK_GROWTH_KB);
    // And it still serves.
    expect(await push(server, JSON.stringify(pushBody("AAAA", 0)))).toBe(200);
  });

  it("exits 0 (within its grace) on SIGTERM in the middle of that load", SIGTERM_TEST, async () => {
    const server = await start();
    const body = hostileBody();
    let answered = 0;
    let stopping = false;
    const worker = async (): Promise<void> => {
      while (!stopping) {
        try {
          await push(server, body);
          answered++;
        } catch {
          return; // the server has closed its listener
        }
      }
    };
    const workers = Array.from({ length: PARALLEL }, () => worker());
    // Load is flowing once a first answer is back; the other requests are then in flight.
    await vi.waitFor(() => expect(answered).toBeGreaterThan(0), { timeout: 30_000, interval: 20 });
    const code = await server.stop();
    stopping = true;
    await Promise.all(workers);
    expect(code, server.output()).toBe(0);
  });

  it(
    "exits 0 (within its grace) on SIGTERM while a connection answered early is still uploading",
    SIGTERM_TEST,
    async () => {
      const server = await start();
      const { port } = new URL(server.url);
      const socket = connect({ host: "127.0.0.1", port: Number(port) });
      await new Promise((resolve) => socket.once("connect", resolve));
      let received = "";
      socket.setEncoding("latin1").on("data", (chunk: string) => (received += chunk));
      const length = 1024 * 1024;
      // An unknown token: the server answers 401 from the headers alone, keeps the connection (keep-alive) and
      // reads the body to its end before the connection is idle again.
      socket.write(
        `PUT /api/v1/vaults/${randomUUID()} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${length}\r\nAuthorization: Bearer not-a-token-0123456789\r\n\r\n`,
      );
      socket.write(" ".repeat(1024));
      await vi.waitFor(() => expect(received).toContain("\r\n\r\n"), { timeout: 10_000 });
      expect(received).toMatch(/^HTTP\/1\.1 401 /);
      expect(received.toLowerCase()).toContain("connection: keep-alive");

      const stopped = server.stop();
      await vi.waitFor(() => expect(server.output()).toContain("shutdown.listener-closed"), {
        timeout: 10_000,
      });
      // The rest of the body arrives after the listener closed: only then is the connection idle.
      socket.write(" ".repeat(length - 1024));
      expect(await stopped, server.output()).toBe(0);
      socket.destroy();
    },
  );
});
