// `latchkey exec -- <npm|pnpm|yarn|cmd> args…`: the program gets, in its environment only, the token of every
// registry the .npmrc files name, in the variables each client reads (registry/handoff.ts has the evidence).
// No .npmrc is written, no token goes into argv, and the program's exit and signals pass through as with `run`.
import { join, resolve } from "node:path";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { sameVariable } from "../env-names.js";
import { printStatus } from "../output/output.js";
import {
  authTokenKey,
  clientEnvironment,
  findNamedRegistries,
  handoffVariable,
  uniqueRegistries,
} from "../registry/handoff.js";
import type { NamedRegistry } from "../registry/handoff.js";
import {
  envReferences,
  expandEnv,
  projectNpmrcPaths,
  readConfigText,
  readNpmrc,
  selfAndAncestors,
} from "../registry/handoff-npmrc.js";
import { envFileMention, yarnrcFinding } from "../registry/handoff-yarnrc.js";
import { resolveRegistryToken } from "../registry/sources.js";
import type { NerfDart, TokenSource } from "../registry/types.js";
import { runProgram } from "../run/replace.js";
import type { RunState } from "./support.js";

/** Options of `exec`. */
export interface ExecOptions {
  /** The program and its arguments. */
  readonly command: readonly string[];
  /** Refuse to start when a registry an .npmrc or the environment names has no token. */
  readonly strict: boolean;
  readonly verbose: number;
}

/** One registry's outcome, for the notes and for tests. */
export interface ExecRegistry {
  readonly registry: NamedRegistry;
  readonly source: TokenSource | null;
}

/** What `exec` hands to the program: the added environment and the per-registry outcome. */
export interface ExecPlan {
  readonly env: Record<string, string>;
  readonly registries: readonly ExecRegistry[];
}

/**
 * Finds the registries and resolves their tokens (resolveRegistryToken: input > env > provider > host CLI >
 * keystore). Notes about registries without a token, and settings that could not be used, go to stderr.
 */
export async function planExec(
  ctx: Context,
  options: Pick<ExecOptions, "strict" | "verbose">,
): Promise<ExecPlan> {
  const discovery = await findNamedRegistries(ctx);
  for (const ignored of discovery.ignored) {
    printStatus(ctx, `Note: ignoring ${ignored.key} from ${ignored.origin}: ${ignored.reason}.`);
  }
  const env: Record<string, string> = {};
  const registries: ExecRegistry[] = [];
  for (const registry of uniqueRegistries(discovery.registries)) {
    const resolution = await resolveRegistryToken(ctx, registry.url);
    registries.push({ registry, source: resolution.source });
    if (resolution.token !== null) Object.assign(env, clientEnvironment(registry.nerfDart, resolution.token));
  }
  await refuseRerouting(ctx, env);
  const missing = registries.filter((r) => r.source === null);
  // npmjs is only there by default: under --strict, a project that installs public packages anonymously must
  // still run.
  const required = missing.filter((r) => r.registry.origin !== "default");
  if (options.strict && required.length > 0) {
    throw new LatchkeyError("LK_TOKEN_MISSING", {
      message: `No token for ${required.map((r) => `${r.registry.nerfDart} (${describeOrigin(r.registry)})`).join(", ")}; not starting the program (--strict).`,
      details: { registries: required.map((r) => r.registry.nerfDart) },
    });
  }
  for (const r of missing) {
    printStatus(
      ctx,
      `Note: no token for ${r.registry.nerfDart} (${describeOrigin(r.registry)}); passing none for it.`,
    );
  }
  if (options.verbose > 0) {
    for (const r of registries.filter((x) => x.source !== null)) {
      printStatus(
        ctx,
        `Passing the ${r.source} token for ${r.registry.nerfDart} (${describeOrigin(r.registry)}) as npm_config_/pnpm_config_${r.registry.nerfDart}:_authToken and ${handoffVariable(r.registry.nerfDart)}.`,
      );
    }
  }
  return { env, registries };
}

/** The registry each variable `exec` sets carries the token of. */
function carriers(env: Record<string, string>): Map<string, NerfDart> {
  const out = new Map<string, NerfDart>();
  for (const name of Object.keys(env)) {
    const match = /^(?:npm|pnpm)_config_(\/\/.*):_authToken$/.exec(name);
    if (match !== null) out.set(name, match[1]!);
  }
  // The hand-off variables' names hash their registry: map them back through the npm_config_ keys beside them.
  for (const nerf of new Set(out.values())) out.set(handoffVariable(nerf), nerf);
  return out;
}

function rerouted(file: string, line: number, name: string, nerf: NerfDart): LatchkeyError {
  return new LatchkeyError("LK_TOKEN_REROUTED", {
    message: `${file}:${line} refers to \${${name}}, which \`latchkey exec\` sets to the token of ${nerf}, other than as that registry's own token; not starting the program.`,
    details: { path: file, line, registry: nerf },
  });
}

function unchecked(file: string, line: number, what: string): LatchkeyError {
  return new LatchkeyError("LK_PROJECT_CONFIG_UNCHECKED", {
    message: `${file}:${line} ${what}; not starting the program with registry tokens.`,
    details: { path: file, line },
  });
}

/**
 * Settings of a project .npmrc that make npm read another configuration file, expanding `${VAR}` there too: the
 * user and global files (@npmcli/config loads the project file first, so its `userconfig` and `globalconfig`
 * choose them; its `prefix` moves the global file to PREFIX/etc/npmrc, npm only logging an error). Refused, not
 * followed: such a file lies outside the project, may name further files, and a project has no use for them.
 */
const NPM_FILE_SETTINGS: readonly string[] = ["userconfig", "globalconfig", "prefix"];

/**
 * npm, pnpm and yarn expand `${VAR}` in the project's .npmrc and .yarnrc.yml, so a cloned project could write
 * `//its-host/:_authToken=${LATCHKEY_TOKEN_…npmjs…}` and have the package manager send your npmjs token to its
 * host. Each variable `exec` sets carries one registry's token; a project file may name it only as that registry's
 * own token (what `latchkey setup npmrc` writes). Anything else is LK_TOKEN_REROUTED, and a project file that makes
 * the client read configuration this check cannot see is LK_PROJECT_CONFIG_UNCHECKED, before the program starts.
 * The files are every one a client reads here except the user's own (handoff-npmrc.ts, handoff-yarnrc.ts).
 */
async function refuseRerouting(ctx: Context, env: Record<string, string>): Promise<void> {
  const handed = carriers(env);
  if (handed.size === 0) return;
  const os = ctx.platform.os;
  const carried = (name: string): [string, NerfDart] | undefined =>
    [...handed].find(([variable]) => sameVariable(variable, name, os));

  for (const file of projectNpmrcPaths(ctx)) {
    const npmrc = await readNpmrc(file);
    for (const [i, line] of (npmrc?.lines ?? []).entries()) {
      if (/^\s*[;#]/.test(line.raw)) continue;
      const ownKey = line.key === undefined ? null : expandEnv(line.key, ctx.env).value;
      if (ownKey !== null && NPM_FILE_SETTINGS.includes(ownKey.toLowerCase())) {
        throw unchecked(
          file,
          i + 1,
          `sets ${ownKey}, which makes npm read another configuration file, one \`latchkey exec\` does not check`,
        );
      }
      for (const name of envReferences(line.value ?? line.raw).concat(envReferences(line.key ?? ""))) {
        const found = carried(name);
        if (found === undefined) continue;
        const [variable, nerf] = found;
        const own = ownKey === authTokenKey(nerf) && line.value?.trim() === `\${${name}}`;
        if (!own || envReferences(line.key ?? "").length > 0) throw rerouted(file, i + 1, variable, nerf);
      }
    }
  }

  // yarn 2+ reads .yarnrc.yml from the working directory and every directory above it; the home directory's is
  // the user's own, read from anywhere.
  const home = ctx.env.HOME ?? ctx.env.USERPROFILE;
  for (const dir of selfAndAncestors(ctx.cwd)) {
    if (home !== undefined && resolve(home) === dir) continue;
    const file = join(dir, ".yarnrc.yml");
    const text = await readConfigText(file);
    const finding = text === null ? null : await yarnrcFinding(text, handed, os);
    if (finding?.kind === "rerouted") throw rerouted(file, finding.line, finding.variable, finding.registry);
    if (finding?.kind === "loads-file") {
      throw unchecked(
        file,
        finding.line,
        `sets ${finding.key}, which makes yarn read files \`latchkey exec\` does not check`,
      );
    }
    if (finding?.kind === "unreadable") {
      throw unchecked(file, finding.line, `cannot be checked as yarn would read it (${finding.reason})`);
    }
  }
  const envFile = join(resolve(ctx.cwd), ".env.yarn");
  const envText = await readConfigText(envFile);
  const mention = envText === null ? null : envFileMention(envText, handed);
  if (mention !== null)
    throw rerouted(envFile, mention.line, mention.variable, handed.get(mention.variable)!);
}

function describeOrigin(registry: NamedRegistry): string {
  const what = registry.scope === null ? "default registry" : `${registry.scope} registry`;
  if (registry.origin === "default") return "npm's default registry";
  if (registry.origin === "environment") return `${what}, from npm_config_* in the environment`;
  return `${what} in ${registry.origin}`;
}

/** `latchkey exec`: runs the program with the registry tokens in its environment; returns its exit code. */
export async function execWithTokens(ctx: Context, state: RunState, options: ExecOptions): Promise<number> {
  const [command, ...args] = options.command;
  if (command === undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message: "No program given.",
      hint: "Usage: latchkey exec [--strict] -- program [args…], e.g. latchkey exec -- npm install",
    });
  }
  const plan = await planExec(ctx, options);
  const inherited: Record<string, string> = {};
  for (const [key, value] of Object.entries(ctx.env)) if (value !== undefined) inherited[key] = value;
  const outcome = await runProgram(ctx, { command, args, env: { ...inherited, ...plan.env } });
  if (outcome.signal) state.signal = outcome.signal;
  return outcome.code ?? 1;
}
