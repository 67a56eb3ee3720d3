// GitHub Actions secrets of a repository, or of one of its deployment environments, through the REST API
// (https://docs.github.com/en/rest/actions/secrets):
// - GET    {scope}/secrets/public-key    the repository's or environment's X25519 key (base64) and its key_id
// - GET    {scope}/secrets?per_page=100  names, a page at a time
// - PUT    {scope}/secrets/{name}        {"encrypted_value", "key_id"}; 201 created, 204 updated
// - DELETE {scope}/secrets/{name}        204
// where {scope} is /repos/{owner}/{repo}/actions or /repos/{owner}/{repo}/environments/{environment}. Each value is
// sealed to the public key with libsodium's crypto_box_seal before it leaves the machine, so GitHub's API servers
// see only ciphertext; libsodium is loaded only when a push to GitHub runs. Values are write-only: no pull.
import {
  checkSchema,
  fromBase64,
  githubPublicKeyAnswerSchema,
  githubSecretsAnswerSchema,
  toBase64,
  utf8Encode,
  type GithubActionsConfig,
} from "@latchkey/core";
import {
  platformRequest,
  readAnswer,
  reasonOf,
  trimBase,
  unexpectedAnswer,
  type AdapterInput,
  type ApplyPlan,
  type ApplyResult,
  type FailedName,
  type PlatformAdapter,
} from "./adapter.js";

/** GitHub's REST API (GitHub Enterprise Server: https://HOST/api/v3). */
export const GITHUB_API = "https://api.github.com";
const PAGE = 100;

/** A name GitHub accepts for a secret: letters, digits and underscores, not starting with a digit or GITHUB_. */
export function isGithubSecretName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !/^GITHUB_/i.test(name);
}

/** Seals `value` to a base64 X25519 public key the way GitHub documents: libsodium's crypto_box_seal, base64. */
export async function sealForGithub(value: string, publicKey: string): Promise<string> {
  const { default: sodium } = await import("libsodium-wrappers");
  await sodium.ready;
  return toBase64(sodium.crypto_box_seal(utf8Encode(value), fromBase64(publicKey)));
}

/** A GitHub Actions adapter for one repository or repository environment. */
export function githubActionsAdapter(input: AdapterInput<GithubActionsConfig>): PlatformAdapter {
  const { ctx, config, credential } = input;
  const repo = `/repos/${encodeURIComponent(config.owner)}/${encodeURIComponent(config.repo)}`;
  const scope =
    config.environment === undefined
      ? `${repo}/actions`
      : `${repo}/environments/${encodeURIComponent(config.environment)}`;
  const base = `${trimBase(config.baseUrl ?? GITHUB_API)}${scope}/secrets`;
  const send = (method: string, path: string, body?: unknown) =>
    platformRequest(ctx, input.verbose ?? 0, {
      platform: "github-actions",
      url: `${base}${path}`,
      method,
      bearer: { token: credential },
      headers: {
        accept: "application/vnd.github+json",
        "x-github-api-version": "2022-11-28",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  const listNames = async (): Promise<string[]> => {
    const names: string[] = [];
    for (let page = 1; ; page++) {
      const response = await send("GET", `?per_page=${PAGE}&page=${page}`);
      if (response.status !== 200)
        throw unexpectedAnswer("github-actions", "listing the secrets", response.status);
      const answer = await readAnswer("github-actions", "listing the secrets", response, (v) =>
        checkSchema(githubSecretsAnswerSchema, v),
      );
      names.push(...answer.secrets.map((secret) => secret.name));
      if (answer.secrets.length < PAGE || names.length >= answer.total_count) return names.sort();
    }
  };

  const apply = async (plan: ApplyPlan): Promise<ApplyResult> => {
    const written: string[] = [];
    const removed: string[] = [];
    const failed: FailedName[] = [];
    const valid = Object.keys(plan.upsert).filter((name) => {
      if (isGithubSecretName(name)) return true;
      failed.push({ name, reason: "not a valid GitHub secret name" });
      return false;
    });
    const steps = [
      ...valid.map((name) => ({ name, remove: false })),
      ...plan.remove.map((name) => ({ name, remove: true })),
    ];
    if (steps.length === 0) return { written, removed, failed };
    // One key for the whole push: GitHub answers the same key_id for every PUT of this scope.
    const keyResponse = await send("GET", "/public-key");
    if (keyResponse.status !== 200)
      throw unexpectedAnswer("github-actions", "reading the public key", keyResponse.status);
    const key = await readAnswer("github-actions", "reading the public key", keyResponse, (v) =>
      checkSchema(githubPublicKeyAnswerSchema, v),
    );
    for (const [index, step] of steps.entries()) {
      const path = `/${encodeURIComponent(step.name)}`;
      try {
        const response = step.remove
          ? await send("DELETE", path)
          : await send("PUT", path, {
              encrypted_value: await sealForGithub(plan.upsert[step.name]!, key.key),
              key_id: key.key_id,
            });
        await response.arrayBuffer().catch(() => undefined);
        const ok = step.remove
          ? response.status === 204 || response.status === 404
          : response.status === 201 || response.status === 204;
        if (!ok) failed.push({ name: step.name, reason: `HTTP ${response.status}` });
        else if (step.remove) removed.push(step.name);
        else written.push(step.name);
      } catch (error) {
        if (written.length === 0 && removed.length === 0) throw error;
        const reason = reasonOf(error);
        failed.push(...steps.slice(index).map(({ name }) => ({ name, reason })));
        break;
      }
    }
    return { written, removed, failed };
  };

  return { platform: "github-actions", listNames, apply, pull: null };
}
