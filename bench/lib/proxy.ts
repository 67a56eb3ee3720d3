// A round-robin TCP proxy on loopback for the server bench: each new connection goes to the next backend in turn
// and stays there (keep-alive requests follow their connection), as a layer-4 load balancer in front of several
// `latchkey-server` processes would. It runs in a child process of its own, so its copying does not share the
// bench's event loop with autocannon; what it costs shows up in the rows measured through it.
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

/** A running proxy: where clients connect, its pid (for its RSS), and how to stop it. */
export interface Proxy {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts the proxy in front of `backends` (http://127.0.0.1:PORT URLs); its script is written under `temp`. */
export async function startRoundRobinProxy(temp: string, backends: readonly string[]): Promise<Proxy> {
  const script = join(temp, "round-robin-proxy.mjs");
  await writeFile(
    script,
    [
      'import { connect, createServer } from "node:net";',
      "const backends = JSON.parse(process.argv[2]).map((url) => new URL(url));",
      "let next = 0;",
      "const server = createServer((client) => {",
      "  const target = backends[next++ % backends.length];",
      "  const upstream = connect({ host: target.hostname, port: Number(target.port) });",
      "  client.setNoDelay(true); upstream.setNoDelay(true);",
      "  client.pipe(upstream); upstream.pipe(client);",
      "  const end = () => { client.destroy(); upstream.destroy(); };",
      "  client.on('error', end); upstream.on('error', end); client.on('close', end); upstream.on('close', end);",
      "});",
      "server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify(server.address()) + '\\n'));",
      "process.on('SIGTERM', () => { server.close(); process.exit(0); });",
    ].join("\n"),
  );
  const child = spawn(process.execPath, [script, JSON.stringify(backends)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let text = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
      const line = text.split("\n")[0];
      if (text.includes("\n") && line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
    });
    void exited.then(() => reject(new Error("bench: the round-robin proxy exited before listening")));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
