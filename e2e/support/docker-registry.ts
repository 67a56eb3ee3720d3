// A real container registry for the docker suites: distribution's `registry` (Debian package docker-registry) on
// loopback, with htpasswd (bcrypt) authentication required for every request, and an image manifest pushed
// through its HTTP API so that `docker manifest inspect` has something to read. No daemon is involved: the docker
// CLI logs in and reads manifests client-side.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";

/** The programs the docker suites drive, with the apt packages that bring them. */
const REQUIRED = [
  ["docker", "the docker CLI (docker-ce-cli or docker.io)"],
  ["docker-registry", "docker-registry"],
  ["htpasswd", "apache2-utils"],
] as const;

/** Finds `command` on PATH. */
export function onPath(command: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not here
    }
  }
  return null;
}

/** Whether the docker CLI, the registry and htpasswd are installed; the reason names the missing packages. */
export function dockerToolsAvailable(): { ok: boolean; reason?: string } {
  const missing = REQUIRED.filter(([command]) => onPath(command) === null);
  if (missing.length === 0) return { ok: true };
  return {
    ok: false,
    reason: `not on PATH: ${missing.map(([c, p]) => `${c} (${p})`).join(", ")}`,
  };
}

/** A running registry. */
export interface DockerRegistry {
  /** `127.0.0.1:PORT`: the server URL docker uses for it. */
  readonly host: string;
  readonly url: string;
  readonly username: string;
  /** Pushes a one-config, no-layer image manifest as `repo:tag`, with the registry's own credentials. */
  pushImage(repo: string, tag: string): Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

function htpasswdLine(username: string, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // -i: the password comes from stdin, never argv.
    const child = execFile("htpasswd", ["-niB", username], (error, stdout, stderr) => {
      if (error) reject(new Error(`htpasswd failed: ${stderr}`));
      else resolve(stdout.trim());
    });
    child.stdin?.end(password);
  });
}

async function waitForRegistry(url: string, child: ChildProcess, log: () => string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`the registry exited (${child.exitCode}): ${log()}`);
    try {
      const response = await fetch(`${url}/v2/`);
      // Up and enforcing authentication.
      if (response.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the registry did not come up: ${log()}`);
}

/** Starts a registry under `dir` that admits only `username` with `password`. */
export async function startDockerRegistry(
  dir: string,
  username: string,
  password: string,
): Promise<DockerRegistry> {
  await mkdir(join(dir, "data"), { recursive: true });
  await writeFile(join(dir, "htpasswd"), `${await htpasswdLine(username, password)}\n`);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  await writeFile(
    join(dir, "config.yml"),
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "data")}`,
      "http:",
      `  addr: ${host}`,
      "auth:",
      "  htpasswd:",
      "    realm: latchkey-test",
      `    path: ${join(dir, "htpasswd")}`,
      "",
    ].join("\n"),
  );
  const child = spawn("docker-registry", ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (output += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (output += d));
  const url = `http://${host}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  };
  try {
    await waitForRegistry(url, child, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  const authorization = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  const sha256 = (data: string) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
  return {
    host,
    url,
    username,
    pushImage: async (repo, tag) => {
      const config = JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [] },
        config: {},
      });
      const digest = sha256(config);
      const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, {
        method: "POST",
        headers: { authorization },
      });
      const location = start.headers.get("location");
      if (start.status !== 202 || !location) throw new Error(`blob upload refused: ${start.status}`);
      const upload = new URL(location, url);
      upload.searchParams.set("digest", digest);
      const put = await fetch(upload, {
        method: "PUT",
        headers: { authorization, "content-type": "application/octet-stream" },
        body: config,
      });
      if (put.status !== 201) throw new Error(`blob upload failed: ${put.status}`);
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.docker.distribution.manifest.v2+json",
        config: {
          mediaType: "application/vnd.docker.container.image.v1+json",
          size: Buffer.byteLength(config),
          digest,
        },
        layers: [],
      });
      const pushed = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
        method: "PUT",
        headers: { authorization, "content-type": "application/vnd.docker.distribution.manifest.v2+json" },
        body: manifest,
      });
      if (pushed.status !== 201) throw new Error(`manifest push failed: ${pushed.status}`);
      return digest;
    },
    stop,
  };
}
