// A private, headless Secret Service for tests and the bench: a dbus-daemon of our own (dbus-run-session with a
// config written here) and, depending on the variant, gnome-keyring-daemon on it. Nothing touches the user's real
// session bus or keyrings: HOME and the XDG directories point into a temporary directory.
//
// Imported by vitest suites and by the bench, which Node runs directly with type stripping: node: builtins only,
// no relative imports, only erasable TypeScript syntax.
//
// Why a config of our own rather than dbus-run-session's default: the default session config makes
// org.freedesktop.secrets and the gcr prompter D-Bus-activatable from /usr/share/dbus-1/services, so a "bus with
// no provider" would start gnome-keyring by itself, and an unlock prompt could open a window on a real display.
// With no service directories, nothing starts that the variant did not start, and a prompt fails at once (it is
// reported as dismissed).
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/**
 * What runs on the private bus:
 * - `unlocked`: gnome-keyring with an unlocked login keyring (the normal desktop case);
 * - `locked`: the same, with one item (service `latchkey`, account `seeded`, value `seeded-value`), then the login
 *   collection locked; with no prompter, unlocking fails;
 * - `uninitialised`: gnome-keyring started without --unlock on an empty HOME: no login keyring, no default
 *   collection;
 * - `no-provider`: a bus with nothing owning org.freedesktop.secrets;
 * - `denied`: gnome-keyring, behind a bus policy that rejects every message sent to org.freedesktop.secrets;
 * - `no-bus`: nothing at all; DBUS_SESSION_BUS_ADDRESS names a socket that does not exist.
 */
export type SecretServiceVariant =
  "unlocked" | "locked" | "uninitialised" | "no-provider" | "denied" | "no-bus";

/** Options for startSecretService. */
export interface SecretServiceOptions {
  /** Default `unlocked`. */
  variant?: SecretServiceVariant;
  /** How long to wait for the session to come up, in milliseconds (default 15 000). */
  startTimeoutMs?: number;
}

/** A running private session. */
export interface SecretServiceSession {
  readonly variant: SecretServiceVariant;
  /** DBUS_SESSION_BUS_ADDRESS, HOME and XDG_* for a client of this session (merge into a child's environment). */
  readonly env: Record<string, string>;
  /** The gnome-keyring-daemon process on the bus, when the variant runs one. */
  readonly providerPid: number | undefined;
  /**
   * `secret-tool lookup ATTR VALUE…` in this session (keyring-rs items carry `service` and `username`): the
   * secret, or null when no item matches. secret-tool also exits silently when it cannot unlock, so in a locked
   * session null does not prove absence.
   */
  secretToolLookup(attributes: Record<string, string>): Promise<string | null>;
  /** Stops the keyring daemon (SIGSTOP), so calls to it hang: the timeout class, for real. */
  freezeProvider(): void;
  /** Resumes the keyring daemon (SIGCONT), whoever stopped it. */
  thawProvider(): void;
  /** Ends the session and removes its directory. */
  stop(): Promise<void>;
}

const REQUIRED_COMMANDS = [
  "dbus-run-session",
  "dbus-daemon",
  "dbus-send",
  "gnome-keyring-daemon",
  "secret-tool",
];
const KEYRING_PASSWORD = "latchkey-test-keyring";
const READY = "LK_SECRET_SERVICE_READY";

function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Whether this machine can run the harness: Linux, with dbus-run-session, gnome-keyring-daemon and secret-tool. */
export function secretServiceAvailable(): { ok: boolean; reason?: string } {
  if (process.platform !== "linux")
    return { ok: false, reason: `the Secret Service harness needs Linux, not ${process.platform}` };
  const missing = REQUIRED_COMMANDS.filter((command) => !onPath(command));
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `not on PATH: ${missing.join(", ")} (apt packages: dbus, dbus-x11, gnome-keyring, libsecret-tools)`,
    };
  }
  return { ok: true };
}

function busConfig(socketPath: string, deny: boolean): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${socketPath}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>${deny ? '\n    <deny send_destination="org.freedesktop.secrets"/>' : ""}
  </policy>
</busconfig>
`;
}

// Runs inside dbus-run-session. Inputs come from the environment (LK_SS_*), never from argv. The keyring password
// is fed on stdin without a newline, which is how gnome-keyring-daemon --unlock reads it.
const SESSION_SCRIPT = `
set -u
case "$LK_SS_VARIANT" in
  no-provider) ;;
  uninitialised)
    gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1 || exit 10 ;;
  *)
    out=$(printf %s "$LK_SS_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets) || exit 11
    [ -n "$out" ] && export $out ;;
esac
pid=0
if [ "$LK_SS_VARIANT" != no-provider ]; then
  tries=0
  until reply=$(dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \\
      org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null); do
    tries=$((tries + 1)); [ "$tries" -gt 200 ] && exit 12; sleep 0.05
  done
  set -- $reply; pid=$2
fi
if [ "$LK_SS_VARIANT" = locked ]; then
  printf %s seeded-value | secret-tool store --label=seeded service latchkey username seeded || exit 13
  dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \\
    org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >/dev/null || exit 14
fi
echo "${READY} $pid $DBUS_SESSION_BUS_ADDRESS"
# Alive until the test closes our stdin, or dies and the pipe closes with it.
read -r _ || true
`;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A daemonized process whose parent is gone may linger as a zombie until init reaps it: that is not alive.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Starts a private session of the given variant. Call stop() when done (also on failure paths). */
export async function startSecretService(options: SecretServiceOptions = {}): Promise<SecretServiceSession> {
  const variant = options.variant ?? "unlocked";
  // Short: the bus socket lives inside, and a unix socket path must stay under 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), "lk-ss-"));
  const dirs = {
    HOME: join(dir, "home"),
    XDG_CONFIG_HOME: join(dir, "config"),
    XDG_DATA_HOME: join(dir, "data"),
    XDG_CACHE_HOME: join(dir, "cache"),
    XDG_RUNTIME_DIR: join(dir, "run"),
  };
  for (const path of Object.values(dirs)) await mkdir(path, { recursive: true, mode: 0o700 });
  const socketPath = join(dirs.XDG_RUNTIME_DIR, "bus");
  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    LANG: "C.UTF-8",
    ...dirs,
  };

  if (variant === "no-bus") {
    return {
      variant,
      env: { ...dirs, DBUS_SESSION_BUS_ADDRESS: `unix:path=${socketPath}` },
      providerPid: undefined,
      secretToolLookup: () =>
        Promise.reject(new Error("no-bus session: there is no Secret Service to look up")),
      freezeProvider: () => {},
      thawProvider: () => {},
      stop: () => rm(dir, { recursive: true, force: true }),
    };
  }

  const configPath = join(dir, "session.conf");
  await writeFile(configPath, busConfig(socketPath, variant === "denied"));
  const child = spawn("dbus-run-session", [`--config-file=${configPath}`, "--", "sh", "-c", SESSION_SCRIPT], {
    env: { ...baseEnv, LK_SS_VARIANT: variant, LK_SS_PASSWORD: KEYRING_PASSWORD },
    stdio: ["pipe", "pipe", "pipe"],
    // Its own process group, so stop() can end the whole session (dbus-daemon included) by that one id.
    detached: true,
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr += chunk;
  });

  let providerPid: number | undefined;
  const killGroup = (): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  const stop = async (): Promise<void> => {
    // A stopped daemon cannot notice its bus going away; SIGCONT is harmless when it is running.
    if (providerPid !== undefined && isAlive(providerPid)) process.kill(providerPid, "SIGCONT");
    child.stdin?.end();
    if (!(await waitForExit(child, 5000))) killGroup();
    // gnome-keyring daemonizes out of the group; it leaves when its bus goes away, but make sure.
    if (providerPid !== undefined && isAlive(providerPid)) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (isAlive(providerPid)) process.kill(providerPid, "SIGTERM");
    }
    await rm(dir, { recursive: true, force: true });
  };

  const address = await new Promise<string>((resolve, reject) => {
    let stdout = "";
    const fail = (why: string): void => {
      clearTimeout(timer);
      reject(new Error(`private Secret Service (${variant}) did not start: ${why}\n${stderr.trim()}`));
    };
    const timer = setTimeout(() => fail("timed out"), options.startTimeoutMs ?? 15_000);
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      fail(`exited with ${signal ?? code}`);
    child.once("error", (error) => fail(error.message));
    child.once("exit", onExit);
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      stdout += chunk;
      const line = stdout.split("\n").find((l) => l.startsWith(`${READY} `));
      if (line === undefined) return;
      clearTimeout(timer);
      child.removeListener("exit", onExit);
      const [, pid = "0", busAddress = ""] = line.split(" ");
      providerPid = Number(pid) > 0 ? Number(pid) : undefined;
      resolve(busAddress);
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });

  const env: Record<string, string> = { ...dirs, DBUS_SESSION_BUS_ADDRESS: address };
  return {
    variant,
    env,
    providerPid,
    secretToolLookup: (attributes) =>
      new Promise((resolve, reject) => {
        const args = ["lookup", ...Object.entries(attributes).flat()];
        execFile(
          "secret-tool",
          args,
          { env: { ...baseEnv, ...env }, timeout: 10_000 },
          (error, stdout, errText) => {
            // secret-tool exits 1 both for "no such item" (silently) and for failures (with a message).
            if (error && error.code === 1 && errText.trim() === "") resolve(null);
            else if (error)
              reject(new Error(`secret-tool ${args.join(" ")} failed: ${errText.trim() || error.message}`));
            else resolve(stdout);
          },
        );
      }),
    freezeProvider: () => {
      if (providerPid === undefined) throw new Error(`the ${variant} session runs no keyring daemon`);
      process.kill(providerPid, "SIGSTOP");
    },
    thawProvider: () => {
      if (providerPid !== undefined && isAlive(providerPid)) process.kill(providerPid, "SIGCONT");
    },
    stop,
  };
}
