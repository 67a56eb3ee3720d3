// Fly.io app secrets through the Machines API (https://fly.io/docs/machines/api/; flyctl's flaps client):
// - GET  /v1/apps/{app}/secrets   names and digests, never values
// - POST /v1/apps/{app}/secrets   {"values": {NAME: "value", GONE: null}}: sets and deletes in one request
// The bulk update is one write: it succeeds or fails whole. Fly keeps values write-only, so there is no pull.
import { checkSchema, flySecretsAnswerSchema, type FlyConfig } from "@latchkey/core";
import {
  platformRequest,
  readAnswer,
  trimBase,
  unexpectedAnswer,
  type AdapterInput,
  type ApplyPlan,
  type ApplyResult,
  type PlatformAdapter,
} from "./adapter.js";

/** The Machines API. */
export const FLY_API = "https://api.machines.dev";

/** A Fly.io adapter for one app. */
export function flyAdapter(input: AdapterInput<FlyConfig>): PlatformAdapter {
  const { ctx, config, credential } = input;
  const url = `${trimBase(config.baseUrl ?? FLY_API)}/v1/apps/${encodeURIComponent(config.app)}/secrets`;
  const send = (method: string, body?: unknown) =>
    platformRequest(ctx, input.verbose ?? 0, {
      platform: "fly",
      url,
      method,
      bearer: { token: credential },
      headers: body === undefined ? {} : { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  const listNames = async (): Promise<string[]> => {
    const response = await send("GET");
    if (response.status !== 200) throw unexpectedAnswer("fly", "listing the secrets", response.status);
    const answer = await readAnswer("fly", "listing the secrets", response, (v) =>
      checkSchema(flySecretsAnswerSchema, v),
    );
    return answer.secrets.map((secret) => secret.name).sort();
  };

  const apply = async (plan: ApplyPlan): Promise<ApplyResult> => {
    const written = Object.keys(plan.upsert);
    if (written.length === 0 && plan.remove.length === 0) return { written: [], removed: [], failed: [] };
    const values: Record<string, string | null> = { ...plan.upsert };
    for (const name of plan.remove) values[name] = null;
    const response = await send("POST", { values });
    await response.arrayBuffer().catch(() => undefined);
    if (response.status === 200 || response.status === 201)
      return { written, removed: [...plan.remove], failed: [] };
    // The bulk update is all or nothing, so every name failed with it.
    const reason = `HTTP ${response.status}`;
    return {
      written: [],
      removed: [],
      failed: [...written, ...plan.remove].map((name) => ({ name, reason })),
    };
  };

  return { platform: "fly", listNames, apply, pull: null };
}
