// Railway variables through the public GraphQL API (https://docs.railway.com/integrations/api and
// https://docs.railway.com/integrations/api/manage-variables; argument types from the schema in railwayapp/cli,
// src/gql/schema.json). Every call is `POST /graphql/v2` with a JSON `{query, variables}`:
// - query    variables(projectId, environmentId, serviceId, unrendered: true)       one JSON map name → value
// - mutation variableCollectionUpsert(input: {projectId, environmentId, serviceId?, variables, skipDeploys: true})
// - mutation variableDelete(input: {projectId, environmentId, serviceId?, name})    one per removed name
// Account and workspace ("team") tokens go as `Authorization: Bearer`, a project token in `Project-Access-Token`.
// GraphQL refuses with HTTP 200 and an `errors` array, a refused credential included ("Not Authorized", "Project
// Token not found"), so every answer's errors are read, not only its status.
import {
  LatchkeyError,
  checkSchema,
  railwayMutationAnswerSchema,
  railwayVariablesAnswerSchema,
  type RailwayConfig,
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

/** Railway's public API host; the GraphQL endpoint is its `/graphql/v2`. */
export const RAILWAY_API = "https://backboard.railway.com";

/** The documents the adapter sends, exactly (its tests compare the request bodies with them). */
export const RAILWAY_DOCUMENTS = {
  variables: `query variables($projectId: String!, $environmentId: String!, $serviceId: String, $unrendered: Boolean) {
  variables(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId, unrendered: $unrendered)
}`,
  upsert: `mutation variableCollectionUpsert($input: VariableCollectionUpsertInput!) {
  variableCollectionUpsert(input: $input)
}`,
  delete: `mutation variableDelete($input: VariableDeleteInput!) {
  variableDelete(input: $input)
}`,
} as const;

/** Railway injects these into every deploy itself: a prune must never delete them, nor a pull copy them. */
const RAILWAY_PROVIDED = /^RAILWAY_/;
/** Railway's messages for a token it refuses (Railway's own CLI reads them the same way). */
const REFUSED_CREDENTIAL = /not authorized|project token not found/i;

interface GraphqlError {
  readonly message: string;
}

/** A GraphQL refusal of one operation: its reason names no value. */
class OperationRefused extends Error {}

/** A Railway adapter for one environment's shared variables, or one service's. */
export function railwayAdapter(input: AdapterInput<RailwayConfig>): PlatformAdapter {
  const { ctx, config, credential } = input;
  const verbose = input.verbose ?? 0;
  const url = `${trimBase(config.baseUrl ?? RAILWAY_API)}/graphql/v2`;
  const scope = {
    projectId: config.projectId,
    environmentId: config.environmentId,
    ...(config.serviceId === undefined ? {} : { serviceId: config.serviceId }),
  };

  const send = (query: string, variables: Record<string, unknown>) =>
    platformRequest(ctx, verbose, {
      platform: "railway",
      url,
      method: "POST",
      ...(config.tokenType === "project" ? {} : { bearer: { token: credential } }),
      headers: {
        "content-type": "application/json",
        ...(config.tokenType === "project" ? { "project-access-token": credential } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });

  /**
   * The errors of a GraphQL answer: none, LK_PLATFORM_UNAUTHORIZED for a refused credential, else an
   * {@link OperationRefused}. Railway's message is not quoted: like any platform's error body, it may echo values.
   */
  const check = (errors: readonly GraphqlError[] | undefined): void => {
    if (errors === undefined || errors.length === 0) return;
    if (errors.some((e) => REFUSED_CREDENTIAL.test(e.message)))
      throw new LatchkeyError("LK_PLATFORM_UNAUTHORIZED", {
        message: `railway refused the connection's credential (${config.tokenType} token).`,
        details: { platform: "railway", tokenType: config.tokenType },
      });
    throw new OperationRefused(
      "refused by Railway (a GraphQL error; its message may echo values, so it is not shown)",
    );
  };

  /** Sends one operation and returns its answer's data, the mutation's boolean or the variables map. */
  const operation = async <T>(
    what: string,
    query: string,
    variables: Record<string, unknown>,
    parse: (
      value: unknown,
    ) => { ok: true; value: { data?: T | null; errors?: GraphqlError[] } } | { ok: false },
  ): Promise<T> => {
    const response = await send(query, variables);
    // A GraphQL server answers a document it refuses 400 with `errors`, like a refused operation.
    if (response.status !== 200 && response.status !== 400) {
      await response.arrayBuffer().catch(() => undefined);
      throw unexpectedAnswer("railway", what, response.status);
    }
    const answer = await readAnswer("railway", what, response, parse);
    check(answer.errors);
    if (answer.data === undefined || answer.data === null)
      throw new LatchkeyError("LK_PLATFORM_FAILED", {
        message: `railway: the answer to ${what} has neither data nor errors.`,
        details: { platform: "railway", status: response.status },
      });
    return answer.data;
  };

  /**
   * The scope's variables, name → value; null for a sealed variable, whose value Railway's API never returns (its
   * own CLI reads the same answer as a map of optional strings and drops the absent ones).
   */
  const read = async (): Promise<Map<string, string | null>> => {
    const data = await operation(
      "listing the variables",
      RAILWAY_DOCUMENTS.variables,
      { ...scope, unrendered: true },
      (v) => checkSchema(railwayVariablesAnswerSchema, v),
    ).catch((error: unknown) => {
      if (error instanceof OperationRefused)
        throw new LatchkeyError("LK_PLATFORM_FAILED", {
          message: `railway: listing the variables was ${error.message}`,
          details: { platform: "railway" },
        });
      throw error;
    });
    const values = new Map<string, string | null>();
    for (const [name, value] of Object.entries(data.variables))
      if (!RAILWAY_PROVIDED.test(name)) values.set(name, value);
    return values;
  };

  const pull = async (): Promise<PulledValues> => {
    const values: Record<string, string> = {};
    const withheld: string[] = [];
    for (const [name, value] of await read())
      if (value === null) withheld.push(name);
      else values[name] = value;
    return { values, withheld: withheld.sort() };
  };

  const mutate = async (what: string, field: string, query: string, input: object) => {
    const data = await operation(what, query, { input }, (v) => checkSchema(railwayMutationAnswerSchema, v));
    if (data[field] !== true)
      throw new OperationRefused(`refused by Railway (${field} answered ${String(data[field])})`);
  };

  const apply = async (plan: ApplyPlan): Promise<ApplyResult> => {
    const written: string[] = [];
    const removed: string[] = [];
    const failed: FailedName[] = [];
    const names = Object.keys(plan.upsert);
    // The upsert comes first and does not deploy: like the other platforms, a push writes values and the next
    // deploy takes them. variableDelete cannot skip deploys, so a prune's deletes come after the upsert and the
    // deploys they start carry the new values.
    if (names.length > 0) {
      try {
        await mutate("writing the variables", "variableCollectionUpsert", RAILWAY_DOCUMENTS.upsert, {
          ...scope,
          variables: { ...plan.upsert },
          skipDeploys: true,
        });
        written.push(...names);
      } catch (error) {
        if (!(error instanceof OperationRefused)) throw error;
        // One collection upsert is all or nothing; deleting after a refused write would leave the target with
        // neither the old names nor the new values.
        return {
          written,
          removed,
          failed: [
            ...failedAll(names, error.message),
            ...failedAll(plan.remove, "not sent: the write failed"),
          ],
        };
      }
    }
    const refused: FailedName[] = [];
    for (const [at, name] of plan.remove.entries()) {
      try {
        await mutate("removing a variable", "variableDelete", RAILWAY_DOCUMENTS.delete, { ...scope, name });
        removed.push(name);
      } catch (error) {
        if (error instanceof OperationRefused) {
          refused.push({ name, reason: error.message });
          continue;
        }
        // Nothing confirmed yet: the error itself says it best (a refused token, an unreachable host).
        if (written.length === 0 && removed.length === 0 && refused.length === 0) throw error;
        failed.push(...failedAll(plan.remove.slice(at), reasonOf(error)));
        break;
      }
    }
    if (refused.length > 0) {
      // A delete refused for a name that is gone (removed meanwhile, or by an earlier attempt) left the target as
      // asked: counted removed, as every adapter counts an absent name. Railway's error does not say which it was.
      const held = await read().catch(() => null);
      for (const one of refused)
        if (held !== null && !held.has(one.name)) removed.push(one.name);
        else failed.push(one);
    }
    return { written, removed, failed };
  };

  return {
    platform: "railway",
    // Sealed variables are listed: a push writes them again and a prune removes them, though a pull cannot read them.
    listNames: async () => [...(await read()).keys()].sort(),
    apply,
    pull,
  };
}
