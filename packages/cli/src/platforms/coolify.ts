// Coolify application environment variables through its REST API (https://coolify.io/docs/api-reference, and
// openapi.yaml in github.com/coollabsio/coolify, tag "Applications"; the behaviour below is read from
// app/Http/Controllers/Api/ApplicationsController.php there):
// - GET    /api/v1/applications/{uuid}/envs             every variable, production and preview (`is_preview`);
//                                                       values only for a token with `read:sensitive`
// - PATCH  /api/v1/applications/{uuid}/envs/bulk        {"data": [{key, value, is_preview, is_literal,
//                                                       is_multiline, is_shown_once}]}: creates or updates by key;
//                                                       answers 201 with the variables written
// - DELETE /api/v1/applications/{uuid}/envs/{env_uuid}  one variable
// Needs Coolify v4.0.0-beta.435 or later: earlier, the bulk PATCH dropped is_multiline and is_shown_once and reset
// them on update (docs/platforms.md). The bearer token is the instance's (Coolify Cloud, or a self-hosted instance:
// `baseUrl`). A connection owns the application's production variables (`is_preview` false): Coolify keeps preview
// deployments' copies apart.
import {
  checkSchema,
  coolifyBulkAnswerSchema,
  coolifyEnvListAnswerSchema,
  coolifyErrorAnswerSchema,
  LatchkeyError,
  type CoolifyConfig,
} from "@latchkey/core";
import {
  failedAll,
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
  type PulledValues,
} from "./adapter.js";

/** Coolify Cloud; a self-hosted instance is the connection's `baseUrl`. */
export const COOLIFY_CLOUD = "https://app.coolify.io";
/** How many variables one bulk PATCH carries, so a refused batch costs few names. */
const BATCH = 50;

interface Entry {
  readonly uuid: string;
  readonly key: string;
  readonly shownOnce: boolean;
  /** Absent when Coolify withheld it (a token without `read:sensitive`, or a variable shown once). */
  readonly value: string | null | undefined;
}

/** One variable as the bulk PATCH takes it. */
function bulkItem(key: string, value: string) {
  return {
    key,
    value,
    is_preview: false,
    // Coolify expands `$NAME` in a value that is not literal when it writes the deployment's .env and compose
    // file; a literal one is single-quoted there, so a `$` in a secret reaches the application unchanged.
    is_literal: true,
    is_multiline: value.includes("\n"),
    // Coolify resets an omitted flag on update, so it is sent; false keeps the value readable by `pull`.
    is_shown_once: false,
  };
}

/** A Coolify adapter for one application's production variables. */
export function coolifyAdapter(input: AdapterInput<CoolifyConfig>): PlatformAdapter {
  const { ctx, config, credential } = input;
  const verbose = input.verbose ?? 0;
  // The API reference gives its server as https://app.coolify.io/api/v1: a base URL copied from there works too.
  const instance = trimBase(config.baseUrl ?? COOLIFY_CLOUD).replace(/\/api\/v1$/, "");
  const envs = `${instance}/api/v1/applications/${encodeURIComponent(config.applicationUuid)}/envs`;
  const send = (method: string, path: string, body?: unknown) =>
    platformRequest(ctx, verbose, {
      platform: "coolify",
      url: `${envs}${path}`,
      method,
      bearer: { token: credential },
      headers: {
        accept: "application/json",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  /** The error for an answer that stops the push: a refused token, an unknown application, anything unexpected. */
  const refusal = async (response: Response, what: string): Promise<LatchkeyError> => {
    const answer = await readAnswer("coolify", what, response, (v) =>
      checkSchema(coolifyErrorAnswerSchema, v),
    ).catch(() => ({ message: undefined }));
    // Coolify answers 400 "Invalid token." for a token whose team its user no longer belongs to.
    if (response.status === 400 && answer.message === "Invalid token.")
      return new LatchkeyError("LK_PLATFORM_UNAUTHORIZED", {
        message: "coolify refused the connection's credential (HTTP 400, invalid token).",
        details: { platform: "coolify", status: 400 },
      });
    if (response.status === 404)
      return new LatchkeyError("LK_PLATFORM_FAILED", {
        message: `coolify: ${new URL(instance).origin} has no application ${config.applicationUuid} that this token's team can see (HTTP 404).`,
        details: { platform: "coolify", status: 404 },
      });
    return unexpectedAnswer("coolify", what, response.status);
  };

  const entries = async (): Promise<Entry[]> => {
    const response = await send("GET", "");
    if (response.status !== 200) throw await refusal(response, "listing the variables");
    const answer = await readAnswer("coolify", "listing the variables", response, (v) =>
      checkSchema(coolifyEnvListAnswerSchema, v),
    );
    return answer
      .filter((env) => !env.is_preview)
      .map((env) => ({
        uuid: env.uuid,
        key: env.key,
        shownOnce: env.is_shown_once === true,
        value: env.value,
      }));
  };

  /** Writes one batch; a batch Coolify refuses is sent again name by name to learn exactly which it takes. */
  const write = async (batch: readonly string[], upsert: Readonly<Record<string, string>>) => {
    const written: string[] = [];
    const failed: FailedName[] = [];
    const response = await send("PATCH", "/bulk", { data: batch.map((key) => bulkItem(key, upsert[key]!)) });
    if (response.status === 201) {
      const answer = await readAnswer("coolify", "writing variables", response, (v) =>
        checkSchema(coolifyBulkAnswerSchema, v),
      );
      const confirmed = new Set(answer.map((env) => env.key));
      for (const key of batch)
        if (confirmed.has(key)) written.push(key);
        else failed.push({ name: key, reason: "not confirmed by coolify" });
      return { written, failed };
    }
    if (response.status === 422) {
      // Coolify validates the items in order and stops at the first it refuses, keeping those before it, and its
      // answer does not say which item that was: one name per request makes the outcome exact.
      if (batch.length > 1) {
        await response.arrayBuffer().catch(() => undefined);
        for (const key of batch) {
          const one = await write([key], upsert);
          written.push(...one.written);
          failed.push(...one.failed);
        }
        return { written, failed };
      }
      const answer = await readAnswer("coolify", "writing variables", response, (v) =>
        checkSchema(coolifyErrorAnswerSchema, v),
      ).catch(() => ({ errors: undefined }));
      // The refused fields' names only: a validation message may quote what was sent.
      const fields = Object.keys(answer.errors ?? {}).sort();
      return {
        written,
        failed: failedAll(batch, `refused (HTTP 422${fields.length > 0 ? `: ${fields.join(", ")}` : ""})`),
      };
    }
    if (response.status === 400 || response.status === 404)
      throw await refusal(response, "writing variables");
    await response.arrayBuffer().catch(() => undefined);
    return { written, failed: failedAll(batch, `HTTP ${response.status}`) };
  };

  const apply = async (plan: ApplyPlan): Promise<ApplyResult> => {
    const written: string[] = [];
    const removed: string[] = [];
    const failed: FailedName[] = [];
    const names = Object.keys(plan.upsert);
    const stop = (error: unknown, pending: Iterable<string>): void => {
      // Nothing confirmed yet: the error itself says it best (a refused token, an unreachable host).
      if (written.length === 0 && removed.length === 0 && failed.length === 0) throw error;
      failed.push(...failedAll(pending, reasonOf(error)));
    };
    for (let i = 0; i < names.length; i += BATCH) {
      try {
        const outcome = await write(names.slice(i, i + BATCH), plan.upsert);
        written.push(...outcome.written);
        failed.push(...outcome.failed);
      } catch (error) {
        stop(error, names.slice(i));
        return { written, removed, failed: [...failed, ...failedAll(plan.remove, "not sent")] };
      }
    }
    if (plan.remove.length === 0) return { written, removed, failed };
    let current: Entry[];
    try {
      current = await entries();
    } catch (error) {
      stop(error, plan.remove);
      return { written, removed, failed };
    }
    for (const [at, name] of plan.remove.entries()) {
      try {
        let ok = true;
        for (const entry of current.filter((e) => e.key === name)) {
          const response = await send("DELETE", `/${encodeURIComponent(entry.uuid)}`);
          // 404: already gone, which is what was asked.
          if (response.status === 200 || response.status === 404) {
            await response.arrayBuffer().catch(() => undefined);
            continue;
          }
          if (response.status === 400) throw await refusal(response, "deleting a variable");
          await response.arrayBuffer().catch(() => undefined);
          failed.push({ name, reason: `HTTP ${response.status}` });
          ok = false;
          break;
        }
        if (ok) removed.push(name);
      } catch (error) {
        stop(error, plan.remove.slice(at));
        return { written, removed, failed };
      }
    }
    return { written, removed, failed };
  };

  const pull = async (): Promise<PulledValues> => {
    const values: Record<string, string> = {};
    const withheld: string[] = [];
    for (const entry of await entries()) {
      // A variable marked "shown once" is write-only in Coolify: it is not pulled.
      if (entry.shownOnce) {
        withheld.push(entry.key);
        continue;
      }
      if (entry.value === undefined)
        throw new LatchkeyError("LK_PLATFORM_UNAUTHORIZED", {
          message:
            "coolify listed the variables without their values: the token lacks the read:sensitive permission.",
          details: { platform: "coolify" },
        });
      values[entry.key] = entry.value ?? "";
    }
    return { values, withheld: withheld.sort() };
  };

  return {
    platform: "coolify",
    listNames: async () => [...new Set((await entries()).map((entry) => entry.key))].sort(),
    apply,
    pull,
  };
}
