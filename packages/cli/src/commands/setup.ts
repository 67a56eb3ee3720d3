// `latchkey setup pnpm`, `setup npmrc` and `setup ci npmrc`: configuration that makes package managers ask for
// tokens, never a token itself. What each client honours where is in registry/handoff.ts.
import { join } from "node:path";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { ensurePrivateDir, readFileSafe, writeFileAtomic } from "../fs/safe-file.js";
import { printData, printJson, printStatus } from "../output/output.js";
import { loadRegistryConfigs } from "../registry/config.js";
import {
  authTokenKey,
  ciVariable,
  findNamedRegistries,
  handoffVariable,
  isShellSafePath,
  pnpmShimPath,
  pnpmShimScript,
  tokenHelperKey,
} from "../registry/handoff.js";
import {
  npmrcSettings,
  projectNpmrcPath,
  readNpmrc,
  updateNpmrc,
  userNpmrcPath,
  type NpmrcChange,
} from "../registry/handoff-npmrc.js";
import { accountNerfDart, nerfDart, registryKind } from "../registry/nerf-dart.js";
import { authorizeTokenEnv, registryUrlFor } from "../registry/sources.js";
import type { NerfDart } from "../registry/types.js";
import { latchkeyCommandPath } from "./setup-git.js";

/** A registry to configure, with the URL its helper or variable is for. */
interface Target {
  readonly nerfDart: NerfDart;
  readonly url: string;
}

/** `--registry` values, normalised; duplicates dropped. */
function explicitTargets(urls: readonly string[]): Target[] {
  const out: Target[] = [];
  for (const url of urls) {
    const nerf = nerfDart(url);
    if (!out.some((t) => t.nerfDart === nerf))
      out.push({ nerfDart: nerf, url: nerf === url ? `https:${url}` : url });
  }
  return out;
}

/** Registries with a token in the keystore (`latchkey login`), by nerf dart. */
async function loggedIn(ctx: Context): Promise<Target[]> {
  const { keystore } = await ctx.keystore();
  const out: Target[] = [];
  for (const account of await keystore.list()) {
    const nerf = accountNerfDart(account);
    if (nerf !== null && !out.some((t) => t.nerfDart === nerf)) {
      out.push({ nerfDart: nerf, url: await registryUrlFor(ctx, nerf) });
    }
  }
  return out.sort((a, b) => a.nerfDart.localeCompare(b.nerfDart));
}

function userNpmrcOrThrow(ctx: Context): string {
  const file = userNpmrcPath(ctx);
  if (file === null) {
    throw new LatchkeyError("LK_NPMRC_INVALID", {
      message: "Could not tell where your .npmrc is: neither HOME nor npm_config_userconfig is set.",
      hint: "Set HOME, or point npm_config_userconfig at the .npmrc to edit.",
    });
  }
  return file;
}

/** Options of `setup pnpm`. */
export interface SetupPnpmOptions {
  /** Registries to configure; default: every registry with a token in the keystore. */
  readonly registries: readonly string[];
  readonly json: boolean;
}

/** One registry `setup pnpm` configured. */
export interface PnpmSetupEntry {
  readonly registry: NerfDart;
  readonly url: string;
  readonly helper: string;
  readonly change: NpmrcChange;
}

/**
 * `setup pnpm`: for each registry, a shim under `$LATCHKEY_HOME/bin` (0700) that prints `Bearer <token>` from
 * `latchkey token --registry URL`, and `//host/:tokenHelper=<shim>` in the user's .npmrc (pnpm refuses or ignores
 * a tokenHelper in a project .npmrc). The .npmrc is edited in place: every other line is kept.
 */
export async function setupPnpm(ctx: Context, options: SetupPnpmOptions): Promise<number> {
  const command = latchkeyCommandPath(ctx.platform);
  if (command === null) {
    throw new LatchkeyError("LK_INTERNAL", {
      message: "Could not tell where this latchkey command is installed, so pnpm could not be pointed at it.",
      hint: "Run `latchkey setup pnpm` through the installed `latchkey` command, not from a bundle or REPL.",
    });
  }
  const targets = options.registries.length > 0 ? explicitTargets(options.registries) : await loggedIn(ctx);
  if (targets.length === 0) {
    throw new LatchkeyError("LK_TOKEN_MISSING", {
      message: "No registry is logged in, so there is nothing to set up for pnpm.",
      hint: "Run `latchkey login --registry URL` first, or name registries with `latchkey setup pnpm --registry URL`.",
    });
  }
  const npmrc = userNpmrcOrThrow(ctx);
  const binDir = join(ctx.paths.home, "bin");
  const entries = targets.map((t) => ({ ...t, helper: pnpmShimPath(ctx.paths, t.nerfDart) }));
  const unsafe = entries.find((e) => !isShellSafePath(e.helper));
  if (unsafe !== undefined) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `pnpm runs a tokenHelper through the shell, which would split the path ${JSON.stringify(unsafe.helper)}: it holds a space or shell syntax.`,
      hint: "Set LATCHKEY_HOME to a path of letters, digits and / . _ - only, then run `latchkey setup pnpm` again.",
    });
  }

  await ensurePrivateDir(binDir);
  for (const entry of entries) {
    const script = pnpmShimScript(command, entry.url, entry.nerfDart);
    const current = await readFileSafe(entry.helper);
    if (current === null || Buffer.from(current).toString("utf8") !== script) {
      await writeFileAtomic(entry.helper, script, { mode: 0o700 });
    }
  }
  const changes = await updateNpmrc(
    npmrc,
    new Map(entries.map((e) => [tokenHelperKey(e.nerfDart), e.helper])),
  );
  const result: PnpmSetupEntry[] = entries.map((e) => ({
    registry: e.nerfDart,
    url: e.url,
    helper: e.helper,
    change: changes.get(tokenHelperKey(e.nerfDart)) ?? "unchanged",
  }));

  // A plaintext token for the same registry stays where it is (it may be all the user has), but is pointed out.
  const after = await readNpmrc(npmrc);
  const settings = after === null ? new Map<string, string>() : npmrcSettings(after, {});
  const plaintext = entries.filter((e) => settings.has(authTokenKey(e.nerfDart)));

  if (options.json) {
    printJson(ctx, { npmrc, registries: result, plaintextTokens: plaintext.map((e) => e.nerfDart) });
    return 0;
  }
  for (const r of result) {
    printStatus(ctx, `${r.registry}: pnpm asks ${r.helper} for the token (${r.change} in ${npmrc}).`);
  }
  for (const e of plaintext) {
    printStatus(
      ctx,
      `Warning: ${npmrc} still holds ${authTokenKey(e.nerfDart)} in plaintext. pnpm uses the tokenHelper instead; ` +
        "npm still reads that line. Remove it once `latchkey whoami` works for this registry.",
    );
  }
  return 0;
}

/** Options of `setup npmrc` and `setup ci npmrc`. */
export interface SetupNpmrcOptions {
  /** CI flavour: the variables CI systems provide (NPM_TOKEN…) instead of the ones `latchkey exec` sets. */
  readonly ci: boolean;
  /** Write the project's .npmrc instead of the user's. */
  readonly project: boolean;
  /** Registries to configure; default: the ones named in .npmrc files and config, and (not in CI) logged in. */
  readonly registries: readonly string[];
  /** Replace a plaintext token line. */
  readonly force: boolean;
  readonly json: boolean;
}

/** One line `setup npmrc` wrote. */
export interface NpmrcSetupEntry {
  readonly registry: NerfDart;
  readonly variable: string;
  readonly line: string;
  readonly change: NpmrcChange;
}

async function npmrcTargets(
  ctx: Context,
  options: Pick<SetupNpmrcOptions, "ci" | "registries">,
): Promise<Target[]> {
  if (options.registries.length > 0) return explicitTargets(options.registries);
  const out: Target[] = [];
  const add = (t: Target): void => {
    if (!out.some((o) => o.nerfDart === t.nerfDart)) out.push(t);
  };
  // npmjs as mere default is left out: a line for it with the variable unset would only break anonymous installs.
  for (const r of (await findNamedRegistries(ctx)).registries) if (r.origin !== "default") add(r);
  for (const c of await loadRegistryConfigs(ctx)) add({ nerfDart: c.nerfDart, url: c.url });
  if (!options.ci) for (const t of await loggedIn(ctx)) add(t);
  return out;
}

/** One registry's `${VARIABLE}` token line. */
interface TokenLine {
  readonly registry: NerfDart;
  readonly variable: string;
  /** `${VARIABLE}`, the line's value. */
  readonly value: string;
}

/** The token line of each target: the CI variable (a project's tokenEnv approved first) or the hand-off one. */
async function tokenLines(ctx: Context, targets: readonly Target[], ci: boolean): Promise<TokenLine[]> {
  const configs = await loadRegistryConfigs(ctx);
  const wanted: TokenLine[] = [];
  for (const t of targets) {
    const config = configs.find((c) => c.nerfDart === t.nerfDart);
    // A line naming a project's tokenEnv makes npm send that variable to the project's URL: approved first.
    if (ci && config !== undefined) await authorizeTokenEnv(ctx, config);
    const variable = ci
      ? ciVariable(t.nerfDart, config?.kind ?? registryKind(t.nerfDart), config)
      : handoffVariable(t.nerfDart);
    wanted.push({ registry: t.nerfDart, variable, value: `\${${variable}}` });
  }
  return wanted;
}

/** One line a CI job's .npmrc needs, and the variable it reads. */
export interface CiNpmrcLine {
  readonly registry: NerfDart;
  readonly variable: string;
  /** `//host/:_authToken=${VARIABLE}`. */
  readonly line: string;
}

/**
 * The lines `setup ci npmrc` would write for the registries the project names (or `registries`), without writing
 * anything: `setup ci --oidc` prints them. None when the project names no registry.
 */
export async function ciNpmrcLines(ctx: Context, registries: readonly string[]): Promise<CiNpmrcLine[]> {
  const targets = await npmrcTargets(ctx, { ci: true, registries });
  return (await tokenLines(ctx, targets, true)).map((w) => ({
    registry: w.registry,
    variable: w.variable,
    line: `${authTokenKey(w.registry)}=${w.value}`,
  }));
}

/**
 * `setup npmrc` / `setup ci npmrc`: writes `//host/:_authToken=${VARIABLE}` for each registry, into the user's
 * .npmrc (or with `project`, the project's), and prints the variables to set. No token is ever written; an
 * existing plaintext token line is only replaced with `force`.
 */
export async function setupNpmrc(ctx: Context, options: SetupNpmrcOptions): Promise<number> {
  const targets = await npmrcTargets(ctx, options);
  if (targets.length === 0) {
    throw new LatchkeyError("LK_USAGE", {
      message:
        "No registry to set up: no .npmrc, config.toml or latchkey.json names one, and none is logged in.",
      hint: "Name the registries: `latchkey setup npmrc --registry https://npm.example.com/`.",
    });
  }
  const file = options.project ? await projectNpmrcPath(ctx) : userNpmrcOrThrow(ctx);
  const wanted = await tokenLines(ctx, targets, options.ci);

  const existing = await readNpmrc(file);
  const settings = existing === null ? new Map<string, string>() : npmrcSettings(existing, {});
  const plaintext = wanted.filter((w) => {
    const value = settings.get(authTokenKey(w.registry));
    return value !== undefined && value !== "" && !/^\$\{[^}]+\}$/.test(value);
  });
  if (plaintext.length > 0 && !options.force) {
    throw new LatchkeyError("LK_NPMRC_INVALID", {
      message: `${file} holds a token in plaintext for ${plaintext.map((p) => p.registry).join(", ")}; Latchkey will not overwrite it.`,
      hint:
        "Store that token in the keystore first (`latchkey login --registry URL --token-stdin`), then run this again " +
        "with --force to replace the line.",
      details: { path: file, registries: plaintext.map((p) => p.registry) },
    });
  }

  const changes = await updateNpmrc(file, new Map(wanted.map((w) => [authTokenKey(w.registry), w.value])), {
    mode: options.project ? 0o644 : 0o600,
  });
  const result: NpmrcSetupEntry[] = wanted.map((w) => ({
    registry: w.registry,
    variable: w.variable,
    line: `${authTokenKey(w.registry)}=${w.value}`,
    change: changes.get(authTokenKey(w.registry)) ?? "unchanged",
  }));

  if (options.json) {
    printJson(ctx, { npmrc: file, registries: result });
    return 0;
  }
  for (const r of result)
    printStatus(ctx, `${r.change === "unchanged" ? "Kept" : "Wrote"} ${r.line} in ${file}.`);
  if (options.project) {
    printStatus(
      ctx,
      "Note: pnpm (10.34 and later) ignores ${VARIABLE} credentials in a project .npmrc; npm and yarn 1 read them.",
    );
  }
  printStatus(
    ctx,
    options.ci
      ? "Set these variables in the CI job (from its secret store):"
      : "Run your package manager through `latchkey exec -- …`, which sets these variables, or set them yourself:",
  );
  const width = Math.max(...result.map((r) => r.variable.length));
  printData(ctx, result.map((r) => `${r.variable.padEnd(width)}  ${r.registry}`).join("\n"));
  return 0;
}
