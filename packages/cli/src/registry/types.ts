// Shared shapes of the registry-credential modules. Each module under registry/ owns its behaviour;
// these types are the contract between them, so that token resolution, the credential-provider client, the
// hand-offs (exec, setup) and the commands agree without importing each other's internals.
import type { ProviderAnswer, RegistryKind } from "@latchkey/core";

/**
 * A registry's identity: npm's "nerf dart", the URL without scheme, query or fragment, always ending in `/`,
 * e.g. `//registry.npmjs.org/` or `//gitlab.example.com/api/v4/packages/npm/`. The keystore account of its
 * token is `registry:<nerf dart>`.
 */
export type NerfDart = string;

/** The kinds of registry and a credential provider's answer are the file formats' (core's schemas). */
export type { ProviderAnswer, RegistryKind };

/** An external credential provider (the proposed npm credential-provider protocol): argv, never a shell line. */
export interface ProviderDeclaration {
  readonly argv: readonly string[];
  /** Who declared it: the user's own config.toml, or a project file (which needs the user's approval first). */
  readonly declaredIn: "user" | "project";
  /** The declaring file; for a project declaration, its project root binds the approval. */
  readonly file: string;
  /** The declaration's line in `file` (1-based), for messages; absent when not known. */
  readonly line?: number;
}

/** One registry as configured (user config.toml and the project's latchkey.json `registries`). */
export interface RegistryConfig {
  readonly nerfDart: NerfDart;
  /** The registry URL as the user gave it (https://host/path/). */
  readonly url: string;
  readonly kind: RegistryKind;
  /**
   * Which file declared it. Only the user's own config.toml may make a self-managed host a GitLab that receives
   * GITLAB_TOKEN/CI_JOB_TOKEN (sources.ts). Optional so hand-built configs (tests) stay valid; absent = neither.
   */
  readonly declaredIn?: "user" | "project";
  /**
   * The environment variable that carries its token. Declared by a project, it is used only once the user has
   * approved it (project/approvals.ts), since it names which of the user's variables goes to this URL.
   */
  readonly tokenEnv?: string;
  /** The declaring file (config.toml or latchkey.json). */
  readonly file?: string;
  /** The line of `tokenEnv` in `file` (1-based), for messages; absent when not known. */
  readonly tokenEnvLine?: number;
  readonly provider?: ProviderDeclaration;
}

/** Where a token came from, in precedence order (first wins). */
export type TokenSource = "input" | "env" | "provider" | "host-cli" | "keystore";

/** What one source said for one registry: used by `whoami --explain`. */
export interface SourceCheck {
  readonly source: TokenSource;
  /** e.g. "NPM_TOKEN", "gh auth token", "keystore registry://npm.pkg.github.com/". */
  readonly name: string;
  /** Whether it supplied the token that is used. */
  readonly won: boolean;
  /** Why it won or did not: "not set", "not for this host", "gh not installed", "timed out after 3 s", … */
  readonly reason: string;
}

/** The outcome of resolving a registry's token. The token itself is never logged or put in errors. */
export interface TokenResolution {
  readonly nerfDart: NerfDart;
  readonly kind: RegistryKind;
  readonly token: string | null;
  readonly source: TokenSource | null;
  /** ISO-8601 expiry when the source said (a credential provider); null = unknown or none. */
  readonly expiresAt: string | null;
  readonly checks: readonly SourceCheck[];
}
