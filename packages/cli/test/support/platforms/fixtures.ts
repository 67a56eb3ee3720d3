// How a test that drives the built CLI starts each platform's loopback double and aims a connection at it, so one
// suite (e2e/platforms-every.test.ts) can push a canary to every platform in core's PLATFORMS without knowing any
// platform's flags or double. That suite fails for a platform missing here: adding a platform means adding its
// fixture.
//
// Imported by e2e and by vitest suites: node: builtins and the doubles only.
import type { PlatformName } from "@latchkey/core";
import { startAwsDouble } from "./aws-double.js";
import { startCoolifyDouble } from "./coolify-double.js";
import type { Double } from "./double.js";
import { startFlyDouble } from "./fly-double.js";
import { startGenericReceiver } from "./generic-receiver.js";
import { startGithubDouble } from "./github-double.js";
import { startRailwayDouble } from "./railway-double.js";
import { startVercelDouble } from "./vercel-double.js";

/** The access key id of the AWS fixtures' credential; the canary is its secret access key. */
const EVERY_AWS_KEY_ID = "AKIAEVERYPLATFORM001";

/** One AWS double (both services) that knows the fixtures' access key, with `secret` as its secret access key. */
const awsDoubleFor = (secret: string) =>
  startAwsDouble({ keys: { [EVERY_AWS_KEY_ID]: secret }, region: "eu-west-1", now: () => Date.now() });

/** One platform's double, started for one credential, as the CLI is to reach it. */
export interface StartedFixture {
  /** The running double (its `requests` and `refusals` are asserted; the suite closes it). */
  readonly double: Double;
  /**
   * The target flags that follow `latchkey env platforms connect PLATFORM --env ENV`: every flag the platform
   * requires, and the one that points at the double (`--base-url URL`, or `--url URL` for generic). Never the
   * credential: that is `credentialInput`, on stdin.
   */
  readonly connectFlags: readonly string[];
  /**
   * What `--credential-stdin` is given. It must contain the `credential` passed to `start` verbatim (the suite
   * scans for that string): the credential itself where the platform's token is one string, or a document that
   * embeds it where the CLI reads a structured credential (e.g. an access key id with the canary as the secret).
   */
  readonly credentialInput: string;
  /**
   * Every name the platform holds now with its value as the double received it in plaintext: decrypted where the
   * platform encrypts on the client (the GitHub double opens the sealed boxes), parsed where it keeps one document
   * (a JSON secret). The suite asserts the pushed canary is here, so a double that cannot recover values cannot
   * have a fixture.
   */
  held(): Promise<ReadonlyMap<string, string>>;
}

/** How the every-platform suite exercises one platform. */
export interface PlatformFixture {
  /**
   * Whether `latchkey env platforms pull` reads values back from this platform (true exactly where the adapter's
   * `pull` is not null with the flags `start` returns); when false the suite expects LK_PLATFORM_PULL_UNSUPPORTED.
   */
  readonly pull: boolean;
  /**
   * Starts the double accepting `credential` (a canary string, distinct per platform, made of letters, digits
   * and "-") and nothing else, empty, on 127.0.0.1. Any other name the double needs (project, app, region…) is
   * the fixture's choice.
   */
  start(credential: string): Promise<StartedFixture>;
}

/**
 * Each platform's fixture. Partial while a platform's double is being written; the every-platform suite fails for
 * each name of core's PLATFORMS absent here.
 */
export const PLATFORM_FIXTURES: Partial<Record<PlatformName, PlatformFixture>> = {
  vercel: {
    // The CLI's default type is `encrypted`, which Vercel decrypts on read.
    pull: true,
    start: async (credential) => {
      const double = await startVercelDouble({
        token: credential,
        project: "prj_every",
        teamId: "team_every",
      });
      return {
        double,
        connectFlags: ["--project", "prj_every", "--team", "team_every", "--base-url", double.url],
        credentialInput: `${credential}\n`,
        held: () => Promise.resolve(new Map(double.entries.map((entry) => [entry.key, entry.value]))),
      };
    },
  },
  fly: {
    pull: false,
    start: async (credential) => {
      const double = await startFlyDouble({ token: credential, app: "every-app" });
      return {
        double,
        connectFlags: ["--app", "every-app", "--base-url", double.url],
        credentialInput: `${credential}\n`,
        held: () => Promise.resolve(new Map(double.secrets)),
      };
    },
  },
  "github-actions": {
    pull: false,
    start: async (credential) => {
      const double = await startGithubDouble({ token: credential, owner: "acme", repo: "every" });
      return {
        double,
        connectFlags: ["--repo", "acme/every", "--base-url", double.url],
        credentialInput: `${credential}\n`,
        held: () => Promise.resolve(new Map(double.repositorySecrets)),
      };
    },
  },
  generic: {
    pull: false,
    start: async (credential) => {
      const double = await startGenericReceiver({ secret: credential, now: () => Date.now() });
      return {
        double,
        connectFlags: ["--url", `${double.url}/latchkey`],
        credentialInput: `${credential}\n`,
        held: () => Promise.resolve(new Map(double.state)),
      };
    },
  },
  coolify: {
    // The double's token may read sensitive values, as a token made with `read:sensitive` may.
    pull: true,
    start: async (credential) => {
      const double = await startCoolifyDouble({ token: credential, application: "everyapp0001" });
      return {
        double,
        connectFlags: ["--application", "everyapp0001", "--base-url", double.url],
        credentialInput: `${credential}\n`,
        held: () =>
          Promise.resolve(
            new Map(double.envs.filter((env) => !env.is_preview).map((env) => [env.key, env.value ?? ""])),
          ),
      };
    },
  },
  railway: {
    // A project token (Project-Access-Token) scoped to the environment, writing one service's variables.
    pull: true,
    start: async (credential) => {
      const double = await startRailwayDouble({
        token: credential,
        tokenType: "project",
        projectId: "prj-every",
        environmentId: "env-every",
        serviceIds: ["svc-every"],
      });
      return {
        double,
        connectFlags: [
          "--project",
          "prj-every",
          "--railway-environment",
          "env-every",
          "--service",
          "svc-every",
          "--token-type",
          "project",
          "--base-url",
          double.url,
        ],
        credentialInput: `${credential}\n`,
        held: () => Promise.resolve(new Map(double.scope("svc-every"))),
      };
    },
  },
  "aws-ssm": {
    // The canary is the secret access key; the double verifies every request's SigV4 signature made with it.
    pull: true,
    start: async (credential) => {
      const double = await awsDoubleFor(credential);
      const path = "/every/web/";
      return {
        double,
        connectFlags: ["--region", "eu-west-1", "--path", path, "--base-url", double.url],
        credentialInput: `${EVERY_AWS_KEY_ID}:${credential}\n`,
        held: () =>
          Promise.resolve(
            new Map(
              [...double.parameters]
                .filter(([name]) => name.startsWith(path))
                .map(([name, parameter]) => [name.slice(path.length), parameter.value]),
            ),
          ),
      };
    },
  },
  "aws-sm": {
    pull: true,
    start: async (credential) => {
      const double = await awsDoubleFor(credential);
      const secretId = "every/web/production";
      return {
        double,
        connectFlags: ["--region", "eu-west-1", "--secret-id", secretId, "--base-url", double.url],
        credentialInput: `${EVERY_AWS_KEY_ID}:${credential}\n`,
        held: () => {
          const secret = double.secrets.get(secretId);
          const values: unknown = secret === undefined ? {} : JSON.parse(secret.secretString);
          return Promise.resolve(new Map(Object.entries(values as Record<string, string>)));
        },
      };
    },
  },
};
