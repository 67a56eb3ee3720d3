// Hand-offs: how a registry token reaches npm, pnpm and yarn without being written to any file.
//
// What each client reads, established by running it against verdaccio 6.10.4 on loopback (authentication required
// to read; e2e/npm-clients.test.ts, e2e/pnpm-clients.test.ts and, for what a project's files can make them read,
// e2e/exec-rerouting.test.ts and e2e/exec-workspaces.test.ts repeat every claim below on each test run). All
// run on Node 24.21.0, offline, with a fresh HOME, cache and store per run.
//
// npm 11.21.2 (pinned in e2e as `npm11`; the `node` 24.21.0 package ships no npm of its own):
//   - environment: `npm_config_//host[:port]/path/:_authToken=TOKEN` (prefix in any case). The nerf-dart part is
//     kept as written, so `_authToken` must keep its case. It beats the project and user .npmrc.
//   - `${VAR}` in an .npmrc value is expanded, in the project's and the user's file alike.
//   - the project's .npmrc is its local prefix's: inside a workspace package, the workspace root's. Its
//     `userconfig`, `globalconfig` and `prefix` choose the user and global files npm then reads and expands.
// pnpm 10.34.9:
//   - environment: `npm_config_<nerf dart>:_authToken`, but only for a nerf dart WITHOUT a port: its env-key
//     normaliser splits at the first ":" (the port's) and mangles the rest. `pnpm_config_*` is not read.
//   - tokenHelper: read from the user .npmrc only (in a project .npmrc it is silently ignored); the path must be
//     absolute with no arguments and is run through /bin/sh; its trimmed stdout is the WHOLE Authorization
//     header, so a helper must print `Bearer <token>` (a bare token is sent as is and gets a 401).
//   - `${VAR}` in a credential from a project .npmrc is ignored with a warning; from the user .npmrc it works.
// pnpm 12.21.0 (the native binary the `pnpm` package ships as @pnpm/exe.<platform>):
//   - environment: `npm_config_<nerf dart>:_authToken` and `pnpm_config_<nerf dart>:_authToken`, ports included.
//   - tokenHelper: user .npmrc only; a project .npmrc holding one is an error ("tokenHelper must not be configured
//     in project-level .npmrc"); the output may be a bare token or `Bearer <token>`.
//   - `${VAR}` in a project .npmrc credential is ignored with a warning, as in pnpm 10; user .npmrc works.
//   - reads the pnpm-workspace.yaml root's .npmrc as well as the package's.
// yarn 1.22.22:
//   - environment: `npm_config_*` and `yarn_*` keys are lower-cased, `_` turned into `-` and dots into nested
//     paths, so no per-registry token can come from the environment.
//   - `${VAR}` in an .npmrc value is expanded (project or user): `latchkey setup npmrc` writes such lines and
//     `latchkey exec` sets the variable. An unset variable is an error ("Failed to replace env in config"), so
//     yarn 1 fails closed when run without `latchkey exec`.
//   - reads the .npmrc of the working directory and of every directory above it.
// yarn 4.18.1 (berry):
//   - reads no .npmrc. From the environment only YARN_NPM_AUTH_TOKEN, the token for every registry without one
//     of its own: exec does not set it, since it would reach whatever registry yarn talks to. The per-registry
//     maps (npmRegistries, npmScopes) cannot come from the environment ("must be an object").
//   - `${VAR}` in .yarnrc.yml works: `npmRegistries: {"//host/": {npmAuthToken: "${LATCHKEY_TOKEN_…}"}}` with
//     `latchkey exec` setting the variable. It is expanded after YAML parsing (escapes, continued strings and
//     block scalars included), in the .yarnrc.yml of the working directory and every directory above it, and
//     from the variables `.env.yarn` in the working directory defines.
//
// A shell in between: Debian's /bin/sh (dash) drops environment variables whose names are not shell identifiers,
// so `npm_config_//host/:_authToken` does not survive a `sh` wrapper script or an npm script that runs npm again;
// bash keeps it. The LATCHKEY_TOKEN_* variables survive either.
//
// Hence `latchkey exec` sets, per registry with a token: npm_config_<nerf>:_authToken, pnpm_config_<nerf>:_authToken
// and the registry's hand-off variable (handoffVariable), for files that say `${LATCHKEY_TOKEN_…}`.
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Context } from "../context.js";
import type { LatchkeyPaths } from "../paths.js";
import { parseQuotedWords, shellQuote } from "../shell-words.js";
import {
  npmrcSettings,
  pnpmProjectNpmrcPaths,
  projectNpmrcPath,
  readNpmrc,
  userNpmrcPath,
} from "./handoff-npmrc.js";
import { KNOWN_REGISTRIES, nerfDart, nerfHost } from "./nerf-dart.js";
import type { NerfDart, RegistryConfig, RegistryKind } from "./types.js";

/** A registry a client will talk to, and where that was said. */
export interface NamedRegistry {
  readonly nerfDart: NerfDart;
  /** The URL as configured (with its scheme). */
  readonly url: string;
  /** `@scope` for a scope's registry; null for the default registry. */
  readonly scope: string | null;
  /** The .npmrc file, `environment` (npm_config_*), or `default` (npmjs when nothing names a default). */
  readonly origin: string;
}

/** A registry setting that could not be used, for a note on stderr. */
export interface IgnoredRegistry {
  readonly key: string;
  readonly origin: string;
  readonly reason: string;
}

/** What the .npmrc files and the environment name. */
export interface RegistryDiscovery {
  readonly registries: readonly NamedRegistry[];
  readonly ignored: readonly IgnoredRegistry[];
  /** The files read (whether or not they exist). */
  readonly files: { readonly project: string; readonly user: string | null };
}

const SCOPE_KEY = /^(@[^:/\s]+):registry$/;

/**
 * The registries npm and pnpm (and yarn 1, from the files it shares with them) would use here: the default
 * `registry` and every `@scope:registry`, each taken, for each client, from the first of the environment
 * (`npm_config_registry`, `npm_config_@scope:registry`), the project .npmrc files that client reads and the user's
 * .npmrc (`npm_config_userconfig` or ~/.npmrc) that sets it, plus https://registry.npmjs.org/ when a client finds
 * no default. npm and pnpm find different project files (npm the workspace root's, pnpm its package's and its
 * workspace root's: see handoff-npmrc.ts), so what either would use is listed. Values go through `${VAR}`
 * expansion; one that is not an http(s) URL afterwards is reported in `ignored`.
 */
export async function findNamedRegistries(ctx: Context): Promise<RegistryDiscovery> {
  const projectFile = await projectNpmrcPath(ctx);
  const userFile = userNpmrcPath(ctx);
  const user = userFile === null ? [] : [userFile];
  const clients = [
    [projectFile, ...user],
    [...pnpmProjectNpmrcPaths(ctx), ...user],
  ];

  const fromEnv = new Map<string, string>();
  for (const [name, value] of Object.entries(ctx.env)) {
    if (value === undefined || value === "" || !/^npm_config_/i.test(name)) continue;
    const key = name.slice("npm_config_".length);
    if (key.toLowerCase() === "registry") fromEnv.set("registry", value);
    else if (SCOPE_KEY.test(key)) fromEnv.set(key, value);
  }
  const settings = new Map<string, Map<string, string> | null>();
  for (const file of new Set(clients.flat())) {
    const npmrc = await readNpmrc(file);
    settings.set(file, npmrc === null ? null : npmrcSettings(npmrc, ctx.env));
  }

  const chosen: { key: string; url: string; origin: string }[] = [];
  for (const files of clients) {
    const layers = [
      { origin: "environment", settings: fromEnv },
      ...files.map((file) => ({ origin: file, settings: settings.get(file) ?? new Map<string, string>() })),
    ];
    const seen = new Set<string>();
    for (const layer of layers) {
      for (const [key, url] of layer.settings) {
        if ((key === "registry" || SCOPE_KEY.test(key)) && !seen.has(key)) {
          seen.add(key);
          chosen.push({ key, url, origin: layer.origin });
        }
      }
    }
    if (!seen.has("registry")) chosen.push({ key: "registry", url: KNOWN_REGISTRIES.npm, origin: "default" });
  }

  const registries: NamedRegistry[] = [];
  const ignored: IgnoredRegistry[] = [];
  const add = ({ key, url, origin }: { key: string; url: string; origin: string }): void => {
    let nerf: NerfDart;
    try {
      if (/\$\{[^}]*\}/.test(url) || !/^https?:\/\//i.test(url)) throw new Error("not a URL");
      nerf = nerfDart(url);
    } catch {
      if (!ignored.some((i) => i.key === key && i.origin === origin)) {
        ignored.push({
          key,
          origin,
          reason: "its value is not an http(s) URL (is a ${VARIABLE} in it unset?)",
        });
      }
      return;
    }
    if (registries.some((r) => r.nerfDart === nerf && r.scope === scopeOf(key))) return;
    registries.push({ nerfDart: nerf, url, scope: scopeOf(key), origin });
  };
  // The default registries first, then the scopes' by name.
  for (const c of chosen.filter((x) => x.key === "registry")) add(c);
  for (const c of chosen.filter((x) => x.key !== "registry").sort((a, b) => a.key.localeCompare(b.key)))
    add(c);
  return { registries, ignored, files: { project: projectFile, user: userFile } };
}

function scopeOf(key: string): string | null {
  return SCOPE_KEY.exec(key)?.[1] ?? null;
}

/** The same registries once each, by nerf dart (several scopes may share one registry). */
export function uniqueRegistries(registries: readonly NamedRegistry[]): NamedRegistry[] {
  const seen = new Set<NerfDart>();
  return registries.filter((r) => !seen.has(r.nerfDart) && seen.add(r.nerfDart));
}

function shortHash(nerf: NerfDart): string {
  return createHash("sha256").update(nerf).digest("hex").slice(0, 8).toUpperCase();
}

function slug(nerf: NerfDart): string {
  return nerf
    .slice(2)
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
}

/**
 * The variable `latchkey exec` sets to a registry's token for files that refer to it as `${NAME}` (.npmrc lines
 * from `latchkey setup npmrc`, a .yarnrc.yml): `LATCHKEY_TOKEN_<HOST_PATH>_<HASH>`. The hash of the nerf dart
 * keeps two registries whose names flatten alike (a-b.example vs a.b.example) apart.
 */
export function handoffVariable(nerf: NerfDart): string {
  return `LATCHKEY_TOKEN_${slug(nerf).toUpperCase()}_${shortHash(nerf)}`;
}

/**
 * The variable a CI job is expected to provide for a registry, by the conventions CI systems already follow:
 * NPM_TOKEN for npmjs, GITHUB_TOKEN for GitHub Packages, CI_JOB_TOKEN for GitLab, the configured `tokenEnv` for a
 * custom registry, else its hand-off variable.
 */
export function ciVariable(nerf: NerfDart, kind: RegistryKind, config?: RegistryConfig): string {
  if (config?.tokenEnv !== undefined) return config.tokenEnv;
  if (kind === "npm") return "NPM_TOKEN";
  if (kind === "github") return "GITHUB_TOKEN";
  if (kind === "gitlab") return "CI_JOB_TOKEN";
  return handoffVariable(nerf);
}

/** The .npmrc key of a registry's token. */
export function authTokenKey(nerf: NerfDart): string {
  return `${nerf}:_authToken`;
}

/** The .npmrc key of a registry's pnpm token helper. */
export function tokenHelperKey(nerf: NerfDart): string {
  return `${nerf}:tokenHelper`;
}

/**
 * The environment that hands `token` for `nerf` to npm, pnpm and any file saying `${LATCHKEY_TOKEN_…}` (see the
 * table at the top of this file). Only keys naming this registry: nothing here reaches another host.
 */
export function clientEnvironment(nerf: NerfDart, token: string): Record<string, string> {
  return {
    [`npm_config_${authTokenKey(nerf)}`]: token,
    [`pnpm_config_${authTokenKey(nerf)}`]: token,
    [handoffVariable(nerf)]: token,
  };
}

/** Where `setup pnpm` puts a registry's token-helper shim: `$LATCHKEY_HOME/bin/pnpm-token-<host>-<hash>`. */
export function pnpmShimPath(paths: LatchkeyPaths, nerf: NerfDart): string {
  const host = nerfHost(nerf)
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-");
  return join(paths.home, "bin", `pnpm-token-${host}-${shortHash(nerf).toLowerCase()}`);
}

/**
 * True when pnpm can run `path` as a tokenHelper: pnpm 10 hands the value to /bin/sh as a command line, so a
 * space or any shell syntax in it would split or run something else. Letters, digits and `/._-+@%,:=` only.
 */
export function isShellSafePath(path: string): boolean {
  return /^\/[A-Za-z0-9/._+@%,:=-]*$/.test(path);
}

/**
 * The shim pnpm runs as the registry's tokenHelper: `latchkey token --registry URL` by the absolute path of this
 * latchkey command (as `setup git` names it: see gitHelperCommand), printed as `Bearer <token>` (pnpm 10 uses the
 * output as the whole header; pnpm 12 takes it too). The token passes through a shell variable and the `printf`
 * builtin: it is never in any argv.
 */
export function pnpmShimScript(command: string, url: string, nerf: NerfDart): string {
  return [
    "#!/bin/sh",
    `# Written by \`latchkey setup pnpm\` for ${nerf}: pnpm runs it as that registry's tokenHelper.`,
    "# It holds no secret; it asks latchkey for the token each time. Run `latchkey setup pnpm` again to rewrite it.",
    `token=$(${shellQuote(command)} token --registry ${shellQuote(url)}) || exit $?`,
    `printf 'Bearer %s\\n' "$token"`,
    "",
  ].join("\n");
}

/**
 * The programs a shim written by pnpmShimScript runs: the latchkey command (and, as written by earlier versions,
 * the Node before it). Null for a file it did not write.
 */
export function pnpmShimPrograms(script: string): string[] | null {
  const line = /^token=\$\((.*) token --registry '.*\) \|\| exit \$\?$/m.exec(script);
  return line === null ? null : parseQuotedWords(line[1]!);
}
