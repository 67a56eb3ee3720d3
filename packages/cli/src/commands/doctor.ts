import { Command } from "commander";
import { LatchkeyError, isLatchkeyError } from "@latchkey/core";
import { access, constants, lstat, readdir, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Context } from "../context.js";
import { globalOptions, type RunState } from "./support.js";
import { gitHelperPrograms } from "./setup-git.js";
import { checkPrivate } from "../fs/safe-file.js";
import {
  codeCacheBase,
  compileCacheDir,
  describeCodeCache,
  type CodeCacheStatus,
} from "../launcher/code-cache.js";
import { palette, printData, printJson } from "../output/output.js";
import { pnpmShimPrograms } from "../registry/handoff.js";

/** Options of `latchkey doctor`. */
export interface DoctorOptions {
  readonly json: boolean;
  readonly verbose: number;
}

interface Problem {
  code: string;
  message: string;
  hint: string;
  cause?: string;
}

/** The machine-readable report `doctor --json` prints. */
export interface DoctorReport {
  ok: boolean;
  node: { version: string; required: string; supported: boolean };
  keystore:
    | {
        backend: string;
        reason: string;
        degraded: boolean;
        explanation: string;
        promoted: number;
        keyringError?: { code: string; message: string };
        fileStore: { exists: boolean; protection: string | null };
      }
    | { error: { code: string; message: string; hint: string } };
  home: {
    path: string;
    exists: boolean;
    /** Whether Latchkey can create it (when missing) and write in it: false makes every storing command fail. */
    writable: boolean;
    entries: { path: string; kind: string; mode: string; problems: string[] }[];
  };
  /** The launcher's code cache (launcher/code-cache.ts): compiled code only, so never a problem, at most slower. */
  codeCache: CodeCacheStatus;
  problems: Problem[];
  warnings: Problem[];
}

const REQUIRED_NODE = [22, 12] as const;

function nodeSupported(version: string): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > REQUIRED_NODE[0] || (major === REQUIRED_NODE[0] && minor >= REQUIRED_NODE[1]);
}

// Lock directories come and go with every write; their presence says nothing about the state of the secrets.
const TRANSIENT = /\.lock(\.steal)?$/;

/** Every path under `root`, except lock directories and the subtrees in `skip`. */
async function walk(root: string, skip: ReadonlySet<string>): Promise<string[]> {
  const found: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      if (TRANSIENT.test(name)) continue;
      const path = join(dir, name);
      if (skip.has(path)) continue;
      found.push(path);
      const stats = await lstat(path);
      if (stats.isDirectory()) await visit(path);
    }
  };
  await visit(root);
  return found;
}

function describeError(error: unknown, verbose: number): Problem {
  const shown = isLatchkeyError(error) ? error : new LatchkeyError("LK_INTERNAL", { cause: error });
  const cause = shown.cause instanceof Error ? shown.cause.message : undefined;
  return {
    code: shown.code,
    message: shown.message,
    hint: shown.hint,
    ...(verbose > 0 && cause ? { cause } : {}),
  };
}

const errnoOf = (error: unknown): string | undefined => (error as NodeJS.ErrnoException).code;

/**
 * Why LATCHKEY_HOME cannot be written, or null when it can: it, or when missing the nearest directory above it
 * (where the first write creates it, ensurePrivateDir), must be a directory this process may write and enter.
 * access(2) answers as the kernel will for the write itself: the mode bits, root's override, a read-only mount.
 */
async function homeWriteProblem(home: string): Promise<Problem | null> {
  const unwritable = (dir: string, why: string): Problem =>
    dir === home
      ? {
          code: "LK_FILE_IO",
          message: `LATCHKEY_HOME ${home} ${why}: every command that stores something would fail.`,
          hint: `Make it yours and writable (chmod 700 '${home}'), or set LATCHKEY_HOME to a directory you can write.`,
        }
      : {
          code: "LK_FILE_IO",
          message: `LATCHKEY_HOME ${home} does not exist and cannot be created: ${dir} ${why}.`,
          hint: `Create it as someone who can (mkdir -m 700 '${home}', owned by you), or set LATCHKEY_HOME to a directory you can write.`,
        };
  let dir = home;
  for (;;) {
    let stats;
    try {
      stats = await stat(dir);
    } catch (error) {
      const code = errnoOf(error);
      // ENOTDIR: a file stands somewhere above; going up finds it.
      if (code !== "ENOENT" && code !== "ENOTDIR") return unwritable(dir, `cannot be reached (${code})`);
    }
    if (stats !== undefined) {
      if (stats.isDirectory()) break;
      return {
        code: "LK_FILE_IO",
        message:
          dir === home
            ? `LATCHKEY_HOME ${home} is not a directory, so nothing can be stored in it.`
            : `LATCHKEY_HOME ${home} cannot be created: ${dir} is not a directory.`,
        hint: "Set LATCHKEY_HOME to a directory of yours (it is created, mode 0700, when missing).",
      };
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  try {
    await access(dir, constants.W_OK | constants.X_OK);
    return null;
  } catch (error) {
    return unwritable(
      dir,
      errnoOf(error) === "EROFS" ? "is on a read-only file system" : "is not writable by you",
    );
  }
}

/** The programs in `paths` that are gone (a stat that finds nothing); other failures are not ours to judge. */
async function missingPrograms(paths: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const path of paths) {
    await stat(path).catch((error: unknown) => {
      if (errnoOf(error) === "ENOENT" || errnoOf(error) === "ENOTDIR") missing.push(path);
    });
  }
  return missing;
}

/**
 * Helpers `latchkey setup git` and `setup pnpm` configured, whose latchkey command (or Node, as earlier versions
 * wrote) no longer exists: moved, uninstalled, or a clone that was deleted. git and pnpm then fail or prompt with
 * no word of Latchkey, so doctor says it. Only values Latchkey wrote are read; others may hold tokens.
 */
async function staleHelpers(ctx: Context): Promise<Problem[]> {
  const found: Problem[] = [];
  let listed;
  try {
    listed = await ctx.spawn("git", ["config", "--null", "--get-regexp", "^credential\\..*helper$"], {
      env: ctx.env,
      cwd: ctx.cwd,
      timeoutMs: 10_000,
    });
  } catch {
    listed = null; // No git, or it would not start: nothing of git's to check.
  }
  for (const entry of listed?.code === 0 ? listed.stdout.split("\0") : []) {
    const newline = entry.indexOf("\n");
    const programs = newline === -1 ? null : gitHelperPrograms(entry.slice(newline + 1));
    const [missing] = programs === null ? [] : await missingPrograms(programs);
    if (missing === undefined) continue;
    const key = entry.slice(0, newline);
    found.push({
      code: "LK_HELPER_STALE",
      message: `git's ${key} runs ${missing}, which no longer exists: git gets no credentials from Latchkey.`,
      hint: "Run `latchkey setup git` again (with the same --host or --local) from the latchkey you use now.",
    });
  }

  const binDir = join(ctx.paths.home, "bin");
  const shims = await readdir(binDir).catch(() => [] as string[]);
  for (const name of shims.filter((n) => n.startsWith("pnpm-token-")).sort()) {
    const shim = join(binDir, name);
    const programs = pnpmShimPrograms(await readFile(shim, "latin1").catch(() => ""));
    const [missing] = programs === null ? [] : await missingPrograms(programs);
    if (missing === undefined) continue;
    found.push({
      code: "LK_HELPER_STALE",
      message: `${shim}, pnpm's tokenHelper, runs ${missing}, which no longer exists: pnpm gets no token from it.`,
      hint: "Run `latchkey setup pnpm` again from the latchkey you use now.",
    });
  }
  return found;
}

/** Gathers the report; no output, so tests can inspect it. */
export async function collectDoctorReport(ctx: Context, options: DoctorOptions): Promise<DoctorReport> {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const nodeVersion = ctx.platform.nodeVersion;
  const supported = nodeSupported(nodeVersion);
  if (!supported) {
    problems.push({
      code: "LK_NODE_UNSUPPORTED",
      message: `Node ${nodeVersion} is older than Latchkey supports.`,
      hint: `Install Node ${REQUIRED_NODE.join(".")} or newer (Node 24 LTS recommended), first on PATH: the latchkey command runs on the \`node\` it finds there.`,
    });
  }

  let keystore: DoctorReport["keystore"];
  try {
    const resolution = await ctx.keystore();
    keystore = {
      backend: resolution.backend,
      reason: resolution.reason,
      degraded: resolution.degraded,
      explanation: resolution.explanation,
      promoted: resolution.promoted,
      ...(resolution.keyringError
        ? { keyringError: { code: resolution.keyringError.code, message: resolution.keyringError.message } }
        : {}),
      fileStore: resolution.fileStore,
    };
    if (resolution.warning) warnings.push(describeError(resolution.warning, options.verbose));
  } catch (error) {
    const problem = describeError(error, options.verbose);
    problems.push(problem);
    keystore = { error: { code: problem.code, message: problem.message, hint: problem.hint } };
  }

  const writeProblem = await homeWriteProblem(ctx.paths.home);
  if (writeProblem) problems.push(writeProblem);
  const home: DoctorReport["home"] = {
    path: ctx.paths.home,
    exists: false,
    writable: writeProblem === null,
    entries: [],
  };
  // Where LATCHKEY_HOME cannot even be looked at (a file above it), that is the problem already reported.
  const homeReport = await checkPrivate(ctx.paths.home).catch((error: unknown) => {
    if (writeProblem) return null;
    throw error;
  });
  if (homeReport) {
    home.exists = true;
    // Node's compile cache chooses its own modes and is code, not secrets: the code cache line judges it when
    // the cache lies under LATCHKEY_HOME (XDG_CACHE_HOME inside it, or LATCHKEY_HOME=$HOME).
    const cache = codeCacheBase(ctx.env);
    const skip = new Set(cache === null ? [] : [compileCacheDir(cache)]);
    const paths = homeReport.kind === "dir" ? await walk(ctx.paths.home, skip) : [];
    for (const report of [homeReport, ...(await Promise.all(paths.map((p) => checkPrivate(p))))]) {
      if (!report) continue;
      home.entries.push({
        path: report.path,
        kind: report.kind,
        mode: `0${(report.mode & 0o777).toString(8)}`,
        problems: report.problems,
      });
      for (const text of report.problems) {
        const symlink = report.kind === "symlink";
        problems.push({
          code: symlink ? "LK_FILE_SYMLINK" : "LK_FILE_PERMISSIONS",
          message: `${report.path}: ${text}`,
          hint: symlink
            ? "Latchkey never reads or writes through a symbolic link: remove it (its target is untouched)."
            : report.kind === "dir"
              ? `Run: chmod 700 '${report.path}' (and make sure you own it).`
              : `Run: chmod 600 '${report.path}' (and make sure you own it).`,
        });
      }
    }
  }
  warnings.push(...(await staleHelpers(ctx)));
  return {
    ok: problems.length === 0,
    node: { version: nodeVersion, required: `>=${REQUIRED_NODE.join(".")}`, supported },
    keystore,
    home,
    codeCache: describeCodeCache(ctx.env),
    problems,
    warnings,
  };
}

const REASONS: Record<string, string> = {
  forced: "forced by LATCHKEY_KEYSTORE",
  "keychain-reachable": "the OS keychain is reachable",
  promoted: "the OS keychain is reachable; file-store entries were moved into it",
  fallback: "no OS keychain is reachable",
};

function render(ctx: Context, report: DoctorReport): string {
  const c = palette(ctx.env, ctx.stdout);
  const ok = c.green("✓");
  const warn = c.yellow("!");
  const bad = c.red("✗");
  const lines = ["Latchkey doctor", ""];
  lines.push(
    `${report.node.supported ? ok : bad} Node ${report.node.version} (Latchkey needs ${report.node.required})`,
  );
  const ks = report.keystore;
  if ("error" in ks) {
    lines.push(`${bad} Keystore: unusable — ${ks.error.code}: ${ks.error.message}`);
  } else {
    const name =
      ks.backend === "keyring" ? "OS keychain" : ks.backend === "file" ? "encrypted file store" : ks.backend;
    lines.push(
      `${ks.degraded ? warn : ok} Keystore: ${name} (${REASONS[ks.reason] ?? ks.reason})${ks.degraded ? " — degraded" : ""}`,
    );
    lines.push(`    ${ks.explanation}`);
    if (ks.promoted > 0)
      lines.push(
        `    Moved ${ks.promoted} entr${ks.promoted === 1 ? "y" : "ies"} from the file store into the keychain.`,
      );
    if (ks.keyringError) lines.push(`    Keychain: ${ks.keyringError.code}: ${ks.keyringError.message}`);
    if (ks.fileStore.exists)
      lines.push(
        `    File store: ${ks.fileStore.protection === "passphrase" ? "passphrase-protected" : "machine-bound key"}`,
      );
  }
  const homeProblems = report.home.entries.filter((e) => e.problems.length > 0).length;
  if (!report.home.writable) {
    lines.push(
      `${bad} LATCHKEY_HOME ${report.home.path}: cannot be ${report.home.exists ? "written" : "created"}`,
    );
  } else if (!report.home.exists) {
    lines.push(`${ok} LATCHKEY_HOME ${report.home.path} (not created yet)`);
  } else {
    lines.push(
      `${homeProblems === 0 ? ok : bad} LATCHKEY_HOME ${report.home.path}: ${report.home.entries.length} entr${report.home.entries.length === 1 ? "y" : "ies"} checked, ${homeProblems === 0 ? "all private to you" : `${homeProblems} with problems`}`,
    );
  }
  const cache = report.codeCache;
  if (cache.state === "refused") {
    lines.push(
      `${warn} Code cache: not used — ${cache.reason ?? "unsafe"}; every start compiles again (slower, not unsafe)`,
      `    hint: make ${cache.path ?? "it"} yours alone (chmod 700, and its parent not writable by others), or remove it`,
    );
  } else if (cache.state === "off") {
    lines.push(`${ok} Code cache: off (${cache.reason ?? "disabled"})`);
  } else {
    lines.push(
      `${ok} Code cache: ${cache.path ?? ""}${cache.state === "not-created-yet" ? " (made on first use)" : ""}`,
    );
  }
  for (const w of report.warnings) lines.push("", `${warn} ${w.code}: ${w.message}`, `    hint: ${w.hint}`);
  if (report.problems.length > 0) {
    lines.push("", `${report.problems.length} problem${report.problems.length === 1 ? "" : "s"}:`);
    for (const p of report.problems) {
      lines.push(`${bad} ${p.code}: ${p.message}`, `    hint: ${p.hint}`);
      if (p.cause) lines.push(`    cause: ${p.cause}`);
    }
  } else {
    lines.push("", "No problems found.");
  }
  return lines.join("\n");
}

/** Runs `latchkey doctor`: prints the report and returns 1 when anything is broken. */
export async function runDoctor(ctx: Context, options: DoctorOptions): Promise<number> {
  const report = await collectDoctorReport(ctx, options);
  if (options.json) printJson(ctx, report);
  else printData(ctx, render(ctx, report));
  return report.ok ? 0 : 1;
}

/** Builds the `doctor` command. */
export function doctorCommand(ctx: Context, state: RunState): Command {
  return new Command("doctor")
    .description(
      "check the keystore, LATCHKEY_HOME (writable, private), the Node version and the git and pnpm helpers",
    )
    .option("--json", "print the report as JSON")
    .addHelpText(
      "after",
      "\nReports which keystore is active and why (forced, keychain reachable, promoted, fallback), how the\n" +
        "encrypted file store is protected when it is used, whether LATCHKEY_HOME can be created and written, and\n" +
        "any file under it that is a symlink, readable by others or owned by someone else. Warns when a helper that\n" +
        "`latchkey setup git` or `setup pnpm` wrote runs a latchkey that no longer exists. Exits 1 when something\n" +
        "is broken, printing a hint for each.",
    )
    .action(async (opts: { json?: boolean }, command: Command) => {
      state.exitCode = await runDoctor(ctx, {
        json: opts.json === true,
        verbose: globalOptions(command).verbose,
      });
    });
}
