// The first errors a new operator meets from the built `latchkey-server`, each with its catalogue code, a hint
// naming the server's own options or commands, and no stack: a port already taken, a Node without node:sqlite,
// and Ctrl-C (or Ctrl-D) at the password prompt of `admin create-user`, typed on a real pseudo-terminal (util-linux
// `script`, essential on Debian) because the prompt reads raw keys only from a TTY.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { collect, tempDir } from "./support/cli.js";

const SERVER = fileURLToPath(new URL("../packages/server/bin/latchkey-server.mjs", import.meta.url));
if (!existsSync(fileURLToPath(new URL("../packages/server/dist/main.mjs", import.meta.url)))) {
  throw new Error("packages/server/dist is missing: run `npm run build` first (npm test does).");
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function dataDir(): Promise<string> {
  const dir = await tempDir("lk-server-errors-");
  cleanups.push(dir.cleanup);
  return join(dir.path, "data");
}

function runServer(args: readonly string[], nodeOptions: readonly string[] = []) {
  const child = spawn(process.execPath, [...nodeOptions, SERVER, ...args], {
    env: { PATH: process.env.PATH, LANG: "C.UTF-8" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return collect(child);
}

/** No stack frame, nor Node's own report of an uncaught error, reached the operator. */
function expectNoStack(output: string): void {
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).not.toContain("node:internal");
  expect(output).not.toContain("Node.js v");
}

describe("latchkey-server's own errors", () => {
  it("a port already in use: LK_SERVER_LISTEN_FAILED, with a hint naming --port", async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const { port } = holder.address() as { port: number };

    const result = await runServer(["--port", String(port), "--data-dir", await dataDir()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `latchkey-server: error LK_SERVER_LISTEN_FAILED: Port ${port} on 127.0.0.1 is already in use (another ` +
        "latchkey-server, or another program).\n" +
        "  hint: Stop the program that holds it, or pick another port: `latchkey-server --port 9000` (--port 0 " +
        "picks a free one).\n",
    );
  });

  it("a Node without node:sqlite: LK_NODE_UNSUPPORTED before anything loads, not a failed import", async () => {
    // Node 24 with its SQLite switched off is what Node 22.12 and older, and 23.0 to 23.3, are to the server.
    const result = await runServer(["--help"], ["--no-experimental-sqlite"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(
      `latchkey-server: error LK_NODE_UNSUPPORTED: latchkey-server needs Node's built-in SQLite (node:sqlite), which Node ${process.versions.node} does not have.`,
    );
    expect(result.stderr).toContain("hint: Install Node 22.13 or newer");
    expectNoStack(result.stderr);
  });

  it.each([
    ["Ctrl-C", "\u0003"],
    ["Ctrl-D", "\u0004"],
  ])(
    "%s at the password prompt of admin create-user cancels cleanly: LK_CANCELLED, exit 130",
    async (_, key) => {
      const dir = await dataDir();
      const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
      const line = [process.execPath, SERVER, "admin", "create-user", "ann@example.com", "--data-dir", dir]
        .map(quote)
        .join(" ");
      // script -e: its exit code is the program's; -f: output as it comes.
      const terminal = spawn("script", ["-qefc", line, "/dev/null"], {
        env: { PATH: process.env.PATH, LANG: "C.UTF-8", TERM: "dumb" },
        stdio: ["pipe", "pipe", "pipe"],
      });
      // A prompt that ignores the key would wait forever: the terminal goes with the test.
      cleanups.push(() => {
        terminal.kill("SIGKILL");
        return Promise.resolve();
      });
      let shown = "";
      terminal.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        if (!shown.includes("Password for") && (shown + chunk).includes("Password for ann@example.com: ")) {
          terminal.stdin.write(key);
        }
        shown += chunk;
      });
      const ended = await collect(terminal);
      expect(ended.code, shown).toBe(130);
      expect(shown).toContain(
        "latchkey-server: error LK_CANCELLED: Cancelled at the password prompt; no account was created.",
      );
      expect(shown).toContain("hint: Run `latchkey-server admin create-user EMAIL` again");
      expectNoStack(shown);
      // The prompt comes before the database is touched: nothing was made.
      expect(existsSync(dir)).toBe(false);
    },
  );
});
