// Vercel project environment variables through the REST API (https://vercel.com/docs/rest-api, "projects"):
// - GET    /v10/projects/{idOrName}/env            the variables (values not included)
// - POST   /v10/projects/{idOrName}/env?upsert=true an array of {key, value, type, target}; answers {created, failed}
// - DELETE /v9/projects/{idOrName}/env/{id}         one variable entry
// - GET    /v1/projects/{idOrName}/env/{id}         one entry decrypted (never for `sensitive`)
// every call with `teamId` when the project belongs to a team. Vercel keeps one entry per (key, set of targets), so
// the same key may appear several times: a connection owns the entries whose targets overlap its own.
import {
  checkSchema,
  vercelCreateAnswerSchema,
  vercelEnvAnswerSchema,
  vercelEnvListAnswerSchema,
  type VercelConfig,
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

/** Vercel's public API. */
export const VERCEL_API = "https://api.vercel.com";
/** How many variables one POST carries, so a refused batch costs few names. */
const BATCH = 50;

interface Entry {
  readonly id: string;
  readonly key: string;
  readonly targets: readonly string[];
}

/** A Vercel adapter for one project and set of targets. */
export function vercelAdapter(input: AdapterInput<VercelConfig>): PlatformAdapter {
  const { ctx, config, credential } = input;
  const verbose = input.verbose ?? 0;
  const base = trimBase(config.baseUrl ?? VERCEL_API);
  const project = encodeURIComponent(config.projectId);
  const url = (path: string, query: Record<string, string> = {}): URL => {
    const u = new URL(`${base}${path}`);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    if (config.teamId !== undefined) u.searchParams.set("teamId", config.teamId);
    return u;
  };
  const send = (method: string, target: URL, body?: unknown) =>
    platformRequest(ctx, verbose, {
      platform: "vercel",
      url: target,
      method,
      bearer: { token: credential },
      headers: body === undefined ? {} : { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  const ours = new Set<string>(config.target);
  const entries = async (): Promise<Entry[]> => {
    const response = await send("GET", url(`/v10/projects/${project}/env`));
    if (response.status !== 200) throw unexpectedAnswer("vercel", "listing the variables", response.status);
    const answer = await readAnswer("vercel", "listing the variables", response, (v) =>
      checkSchema(vercelEnvListAnswerSchema, v),
    );
    return answer.envs
      .map((env) => ({
        id: env.id,
        key: env.key,
        targets: env.target === undefined ? [] : typeof env.target === "string" ? [env.target] : env.target,
      }))
      .filter((entry) => entry.targets.some((t) => ours.has(t)));
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
      const batch = names.slice(i, i + BATCH);
      const body = batch.map((key) => ({
        key,
        value: plan.upsert[key]!,
        type: config.type,
        target: config.target,
      }));
      try {
        const response = await send("POST", url(`/v10/projects/${project}/env`, { upsert: "true" }), body);
        if (response.status !== 200 && response.status !== 201) {
          await response.arrayBuffer().catch(() => undefined);
          failed.push(...failedAll(batch, `HTTP ${response.status}`));
          continue;
        }
        const answer = await readAnswer("vercel", "writing variables", response, (v) =>
          checkSchema(vercelCreateAnswerSchema, v),
        );
        const refused = new Map<string, string>();
        for (const f of answer.failed ?? [])
          if (f.error.key !== undefined) refused.set(f.error.key, f.error.code ?? "refused");
        for (const key of batch) {
          const code = refused.get(key);
          if (code === undefined) written.push(key);
          else failed.push({ name: key, reason: `refused: ${code}` });
        }
      } catch (error) {
        stop(error, names.slice(i));
        return { written, removed, failed: [...failed, ...failedAll(plan.remove, "not sent")] };
      }
    }
    if (plan.remove.length === 0) return { written, removed, failed };
    const doomed = new Set(plan.remove);
    let current: Entry[];
    try {
      current = (await entries()).filter((entry) => doomed.has(entry.key));
    } catch (error) {
      stop(error, plan.remove);
      return { written, removed, failed };
    }
    for (const name of plan.remove) {
      const own = current.filter((entry) => entry.key === name);
      // Deleting an entry that also serves a target this connection does not own would remove it there too.
      const shared = own.find((entry) => entry.targets.some((t) => !ours.has(t)));
      if (shared !== undefined) {
        failed.push({ name, reason: `also set for ${shared.targets.join(", ")}; not removed` });
        continue;
      }
      try {
        let ok = true;
        for (const entry of own) {
          const response = await send(
            "DELETE",
            url(`/v9/projects/${project}/env/${encodeURIComponent(entry.id)}`),
          );
          await response.arrayBuffer().catch(() => undefined);
          if (response.status !== 200 && response.status !== 204 && response.status !== 404) {
            failed.push({ name, reason: `HTTP ${response.status}` });
            ok = false;
            break;
          }
        }
        if (ok) removed.push(name);
      } catch (error) {
        stop(error, plan.remove.slice(plan.remove.indexOf(name)));
        return { written, removed, failed };
      }
    }
    return { written, removed, failed };
  };

  const pull = async (): Promise<PulledValues> => {
    // An entry for the connection's first target decides a key's value: entries for other targets may differ.
    const [first] = config.target;
    const values: Record<string, string> = {};
    const withheld: string[] = [];
    for (const entry of await entries()) {
      if (first === undefined || !entry.targets.includes(first) || Object.hasOwn(values, entry.key)) continue;
      const response = await send("GET", url(`/v1/projects/${project}/env/${encodeURIComponent(entry.id)}`));
      if (response.status !== 200) throw unexpectedAnswer("vercel", "reading a variable", response.status);
      const answer = await readAnswer("vercel", "reading a variable", response, (v) =>
        checkSchema(vercelEnvAnswerSchema, v),
      );
      // Sensitive variables come back without a value: they are write-only, and not pulled.
      if (answer.decrypted === true && answer.value !== undefined) values[entry.key] = answer.value;
      else withheld.push(entry.key);
    }
    return { values, withheld: withheld.sort() };
  };

  return {
    platform: "vercel",
    listNames: async () => [...new Set((await entries()).map((entry) => entry.key))].sort(),
    apply,
    pull: config.type === "sensitive" ? null : pull,
  };
}
