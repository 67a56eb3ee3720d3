// A loopback Railway public API (https://docs.railway.com/integrations/api) for the three operations the adapter
// sends to `POST /graphql/v2`: the `variables` query, `variableCollectionUpsert` and `variableDelete`. It parses
// the GraphQL document itself (one operation, one root field, its arguments and the declared variables, with the
// argument types of Railway's schema) so a wrong operation, field, argument, missing or undeclared variable,
// unused declaration or wrongly typed value is refused as a GraphQL server refuses it: HTTP 400 with `errors`. The
// credential must come in the header its token type uses (`Authorization: Bearer` for account and workspace
// tokens, `Project-Access-Token` for a project token, never both); anything else is answered as Railway does,
// HTTP 200 with `errors: [{message: "Not Authorized"}]`. Refusals are recorded in `refusals` too.
//
// Sealed variables (https://docs.railway.com/variables#sealed-variables: "never visible in the UI nor can it be
// retrieved via the API") are answered as Railway's own CLI reads them: the name with a null value in the
// `variables` map (railwayapp/cli types that map's values as optional strings since its fix for sealed variables).
// That the `variables` query answers them this way, not by leaving the name out or masking the value, is an
// assumption: Railway documents no shape. An upsert of a sealed name replaces its value and it stays sealed (Railway
// cannot un-seal); a delete removes it. Railway's answer to deleting a name it does not hold is not documented: the
// double answers true unless a test sets `refuseAbsentDeletes`.
//
// Imported by vitest suites and e2e: node: builtins and double.ts only.
import {
  Refused,
  expectShape,
  isObject,
  jsonBody,
  startDouble,
  type Answer,
  type Double,
  type RecordedRequest,
} from "./double.js";

/** A running Railway double. */
export interface RailwayDouble extends Double {
  /** The variables of one scope: the environment's shared ones (no service) or a service's; tests seed or read. */
  scope(serviceId?: string): Map<string, string>;
  /** Names the double refuses: an upsert carrying one fails whole, a delete of one fails. */
  readonly refuseNames: Set<string>;
  /** The sealed names of one scope (each also in `scope(…)` with its value, which `variables` answers as null). */
  sealed(serviceId?: string): Set<string>;
  /** Whether a delete of a name the scope does not hold is refused with a GraphQL error (default: answered true). */
  refuseAbsentDeletes: boolean;
}

/** What the double accepts. */
export interface RailwayDoubleOptions {
  readonly token: string;
  /** How the token must arrive: `bearer` (account and workspace tokens) or `project` (Project-Access-Token). */
  readonly tokenType: "bearer" | "project";
  readonly projectId: string;
  readonly environmentId: string;
  /** The services of the environment (a project token reaches them all, within its environment). */
  readonly serviceIds?: readonly string[];
}

// ---- a GraphQL document, as far as these operations need ----

type Value =
  | { readonly kind: "variable"; readonly name: string }
  | { readonly kind: "object"; readonly fields: ReadonlyMap<string, Value> }
  | { readonly kind: "literal"; readonly value: unknown };

interface Operation {
  readonly type: "query" | "mutation";
  /** Declared variable → its type as written (`String!`). */
  readonly declared: ReadonlyMap<string, string>;
  readonly field: string;
  readonly args: ReadonlyMap<string, Value>;
  /** Whether the root field has a selection set (these fields are scalars: none is allowed). */
  readonly selection: boolean;
}

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const re =
    /\s+|,|#[^\n]*|(\.\.\.|[!$():=@[\]{}|])|([_A-Za-z][_0-9A-Za-z]*)|(-?\d+(?:\.\d+)?)|("(?:[^"\\]|\\.)*")/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (m === null) throw new Refused(`Syntax Error: unexpected character at ${at}`);
    const token = m[1] ?? m[2] ?? m[3] ?? m[4];
    if (token !== undefined) tokens.push(token);
    at = re.lastIndex;
  }
  return tokens;
}

function parseDocument(text: string): Operation {
  const tokens = tokenize(text);
  let i = 0;
  const peek = (): string | undefined => tokens[i];
  const take = (expected?: string): string => {
    const token = tokens[i++];
    if (token === undefined || (expected !== undefined && token !== expected))
      throw new Refused(`Syntax Error: expected ${expected ?? "a token"}, found ${token ?? "<EOF>"}`);
    return token;
  };
  const name = (): string => {
    const token = take();
    if (!/^[_A-Za-z]/.test(token)) throw new Refused(`Syntax Error: expected a name, found ${token}`);
    return token;
  };
  const type = (): string => {
    let t: string;
    if (peek() === "[") {
      take("[");
      t = `[${type()}]`;
      take("]");
    } else t = name();
    if (peek() === "!") {
      take("!");
      t += "!";
    }
    return t;
  };
  const value = (): Value => {
    const token = peek();
    if (token === "$") {
      take("$");
      return { kind: "variable", name: name() };
    }
    if (token === "{") {
      take("{");
      const fields = new Map<string, Value>();
      while (peek() !== "}") {
        const key = name();
        take(":");
        if (fields.has(key)) throw new Refused(`There can be only one input field named "${key}".`);
        fields.set(key, value());
      }
      take("}");
      return { kind: "object", fields };
    }
    const t = take();
    if (t === "true" || t === "false") return { kind: "literal", value: t === "true" };
    if (t === "null") return { kind: "literal", value: null };
    if (t.startsWith('"')) return { kind: "literal", value: JSON.parse(t) as unknown };
    if (/^-?\d/.test(t)) return { kind: "literal", value: Number(t) };
    throw new Refused(`Syntax Error: unexpected ${t}`);
  };

  const opType = take();
  if (opType !== "query" && opType !== "mutation")
    throw new Refused(`only a query or a mutation is served here, not ${opType}`);
  if (peek() !== "(" && peek() !== "{") name();
  const declared = new Map<string, string>();
  if (peek() === "(") {
    take("(");
    while (peek() !== ")") {
      take("$");
      const v = name();
      take(":");
      if (declared.has(v)) throw new Refused(`There can be only one variable named "$${v}".`);
      declared.set(v, type());
      if (peek() === "=") throw new Refused("default values are not expected in these documents");
    }
    take(")");
  }
  take("{");
  let field = name();
  if (peek() === ":") {
    take(":");
    field = name();
  }
  const args = new Map<string, Value>();
  if (peek() === "(") {
    take("(");
    while (peek() !== ")") {
      const arg = name();
      take(":");
      if (args.has(arg)) throw new Refused(`There can be only one argument named "${arg}".`);
      args.set(arg, value());
    }
    take(")");
  }
  let selection = false;
  if (peek() === "{") {
    selection = true;
    let depth = 0;
    do {
      const t = take();
      if (t === "{") depth++;
      else if (t === "}") depth--;
    } while (depth > 0);
  }
  take("}");
  if (i !== tokens.length) throw new Refused("one operation with one root field is expected");
  return { type: opType, declared, field, args, selection };
}

// ---- Railway's schema, for these three fields ----

/** An input object's fields → their types. */
const INPUT_TYPES: Record<string, Record<string, string>> = {
  VariableCollectionUpsertInput: {
    projectId: "String!",
    environmentId: "String!",
    serviceId: "String",
    variables: "EnvironmentVariables!",
    replace: "Boolean",
    skipDeploys: "Boolean",
  },
  VariableDeleteInput: {
    projectId: "String!",
    environmentId: "String!",
    serviceId: "String",
    name: "String!",
  },
};

/** Each root field: its operation type and arguments → types. */
const FIELDS: Record<string, { type: "query" | "mutation"; args: Record<string, string> }> = {
  variables: {
    type: "query",
    args: { projectId: "String!", environmentId: "String!", serviceId: "String", unrendered: "Boolean" },
  },
  variableCollectionUpsert: { type: "mutation", args: { input: "VariableCollectionUpsertInput!" } },
  variableDelete: { type: "mutation", args: { input: "VariableDeleteInput!" } },
};

/** A runtime value checked against a named type (a JSON variable value or a literal). */
function coerce(where: string, typeName: string, v: unknown): unknown {
  const nonNull = typeName.endsWith("!");
  const base = nonNull ? typeName.slice(0, -1) : typeName;
  if (v === undefined || v === null) {
    if (nonNull) throw new Refused(`${where}: expected non-nullable type "${typeName}" not to be null.`);
    return null;
  }
  if (base === "String") {
    if (typeof v !== "string") throw new Refused(`${where}: String cannot represent a non string value.`);
    return v;
  }
  if (base === "Boolean") {
    if (typeof v !== "boolean") throw new Refused(`${where}: Boolean cannot represent a non boolean value.`);
    return v;
  }
  if (base === "EnvironmentVariables") {
    if (!isObject(v) || !Object.values(v).every((x) => typeof x === "string"))
      throw new Refused(`${where}: EnvironmentVariables must be an object of string values.`);
    return v;
  }
  const fields = INPUT_TYPES[base];
  if (fields === undefined) throw new Refused(`${where}: unknown type ${base}`);
  if (!isObject(v)) throw new Refused(`${where}: expected type "${base}" to be an object.`);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v))
    if (!(key in fields)) throw new Refused(`${where}: field "${key}" is not defined by type "${base}".`);
  for (const [key, t] of Object.entries(fields)) {
    const got = coerce(`${where}.${key}`, t, v[key]);
    if (key in v) out[key] = got;
  }
  return out;
}

/** Whether a variable declared `declared` may be used where `expected` is required (GraphQL's usage rule). */
function usable(declared: string, expected: string): boolean {
  return declared === expected || (!expected.endsWith("!") && declared === `${expected}!`);
}

/** The operation's root field arguments, with variables substituted and every type checked. */
function resolve(
  op: Operation,
  variables: Record<string, unknown>,
): { field: string; args: Record<string, unknown> } {
  const spec = FIELDS[op.field];
  if (spec === undefined || spec.type !== op.type)
    throw new Refused(
      `Cannot query field "${op.field}" on type "${op.type === "query" ? "Query" : "Mutation"}".`,
    );
  if (op.selection)
    throw new Refused(`Field "${op.field}" must not have a selection since its type is a scalar.`);
  const used = new Set<string>();
  const materialize = (where: string, expected: string, v: Value): unknown => {
    if (v.kind === "variable") {
      const declared = op.declared.get(v.name);
      if (declared === undefined) throw new Refused(`Variable "$${v.name}" is not defined.`);
      if (!usable(declared, expected))
        throw new Refused(
          `Variable "$${v.name}" of type "${declared}" used in position expecting type "${expected}".`,
        );
      used.add(v.name);
      if (!Object.hasOwn(variables, v.name) && declared.endsWith("!"))
        throw new Refused(`Variable "$${v.name}" of required type "${declared}" was not provided.`);
      return coerce(`Variable "$${v.name}"`, declared, variables[v.name]);
    }
    if (v.kind === "literal") return coerce(where, expected, v.value);
    const base = expected.replace(/!$/, "");
    const fields = INPUT_TYPES[base];
    if (fields === undefined) throw new Refused(`${where}: an object where ${expected} is expected`);
    const out: Record<string, unknown> = {};
    for (const key of v.fields.keys())
      if (!(key in fields)) throw new Refused(`Field "${key}" is not defined by type "${base}".`);
    for (const [key, t] of Object.entries(fields)) {
      const inner = v.fields.get(key);
      if (inner === undefined) {
        if (t.endsWith("!"))
          throw new Refused(`Field "${base}.${key}" of required type "${t}" was not provided.`);
        continue;
      }
      const got = materialize(`${where}.${key}`, t, inner);
      if (got !== undefined) out[key] = got;
    }
    return out;
  };
  const args: Record<string, unknown> = {};
  for (const key of op.args.keys())
    if (!(key in spec.args)) throw new Refused(`Unknown argument "${key}" on field "${op.field}".`);
  for (const [key, t] of Object.entries(spec.args)) {
    const v = op.args.get(key);
    if (v === undefined) {
      if (t.endsWith("!"))
        throw new Refused(`Field "${op.field}" argument "${key}" of type "${t}" is required.`);
      continue;
    }
    // An omitted nullable variable leaves its argument unset.
    if (v.kind === "variable" && !Object.hasOwn(variables, v.name) && !t.endsWith("!")) {
      materialize(key, t, v);
      continue;
    }
    args[key] = materialize(key, t, v);
  }
  for (const name of op.declared.keys())
    if (!used.has(name)) throw new Refused(`Variable "$${name}" is never used.`);
  for (const name of Object.keys(variables))
    if (!op.declared.has(name)) throw new Refused(`Variable "$${name}" is sent but not declared.`);
  return { field: op.field, args };
}

/** Starts a Railway double for one project environment, accepting `token` in its token type's header only. */
export async function startRailwayDouble(options: RailwayDoubleOptions): Promise<RailwayDouble> {
  const scopes = new Map<string, Map<string, string>>();
  const scope = (serviceId?: string): Map<string, string> => {
    const key = serviceId ?? "";
    let held = scopes.get(key);
    if (held === undefined) scopes.set(key, (held = new Map<string, string>()));
    return held;
  };
  const refuseNames = new Set<string>();
  const sealedNames = new Map<string, Set<string>>();
  const sealed = (serviceId?: string): Set<string> => {
    const key = serviceId ?? "";
    let held = sealedNames.get(key);
    if (held === undefined) sealedNames.set(key, (held = new Set<string>()));
    return held;
  };
  const services = new Set(options.serviceIds ?? []);
  const failure = (message: string): Answer => ({
    status: 200,
    body: { data: null, errors: [{ message }] },
  });
  // The refusals list and the test's settings belong to the started double, which the handler needs before it exists.
  const started: { double?: RailwayDouble } = {};

  const authorized = (request: RecordedRequest): boolean => {
    const bearer = request.headers.authorization;
    const project = request.headers["project-access-token"];
    if (options.tokenType === "bearer") return bearer === `Bearer ${options.token}` && project === undefined;
    return project === options.token && bearer === undefined;
  };

  const execute = (request: RecordedRequest): Answer => {
    expectShape(request.method === "POST", "the API takes POST only");
    expectShape(request.url === "/graphql/v2", `no endpoint ${request.url}`);
    const body = jsonBody(request);
    expectShape(isObject(body), "the body is a JSON object");
    for (const key of Object.keys(body))
      expectShape(["query", "variables", "operationName"].includes(key), `unknown member ${key}`);
    expectShape(typeof body.query === "string", "query must be a string");
    const variables = body.variables ?? {};
    expectShape(isObject(variables), "variables must be an object");
    const op = parseDocument(body.query);
    if (body.operationName !== undefined)
      expectShape(typeof body.operationName === "string", "operationName");
    const { field, args } = resolve(op, variables);
    if (!authorized(request))
      // Railway's answer to a project token it does not know, in the right header, names the token.
      return failure(
        options.tokenType === "project" && typeof request.headers["project-access-token"] === "string"
          ? "Project Token not found"
          : "Not Authorized",
      );

    const target = field === "variables" ? args : (args.input as Record<string, unknown>);
    const serviceId = (target.serviceId ?? undefined) as string | undefined;
    if (target.projectId !== options.projectId || target.environmentId !== options.environmentId)
      return failure("Not Authorized");
    if (serviceId !== undefined && !services.has(serviceId)) return failure("Service not found");
    const held = scope(serviceId);

    if (field === "variables") {
      expectShape(args.unrendered === true, "the adapter reads unrendered values (references kept)");
      const hidden = sealed(serviceId);
      const variables = Object.fromEntries(
        [...held].map(([name, value]) => [name, hidden.has(name) ? null : value]),
      );
      return { status: 200, body: { data: { variables } } };
    }
    if (field === "variableCollectionUpsert") {
      const vars = target.variables as Record<string, string>;
      expectShape(Object.keys(vars).length > 0, "an upsert of no variables");
      expectShape(target.replace === undefined, "replace would delete every variable not sent");
      expectShape(target.skipDeploys === true, "pushes do not deploy: skipDeploys must be true");
      const refused = Object.keys(vars).find((name) => refuseNames.has(name));
      if (refused !== undefined) return failure(`Invalid variable name ${refused}`);
      for (const [name, value] of Object.entries(vars)) held.set(name, value);
      return { status: 200, body: { data: { variableCollectionUpsert: true } } };
    }
    const name = target.name as string;
    if (refuseNames.has(name)) return failure(`Variable ${name} cannot be deleted`);
    if (!held.has(name) && started.double!.refuseAbsentDeletes) return failure(`Variable ${name} not found`);
    held.delete(name);
    sealed(serviceId).delete(name);
    return { status: 200, body: { data: { variableDelete: true } } };
  };

  const handle = (request: RecordedRequest): Answer => {
    try {
      return execute(request);
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      // GraphQL's shape for a document it will not run, recorded like every double's refusals.
      started.double!.refusals.push(`${request.method} ${request.url}: ${error.message}`);
      return {
        status: 400,
        body: { errors: [{ message: error.message, extensions: { code: "GRAPHQL_VALIDATION_FAILED" } }] },
      };
    }
  };

  const double = Object.assign(await startDouble(handle), {
    scope,
    refuseNames,
    sealed,
    refuseAbsentDeletes: false,
  });
  started.double = double;
  return double;
}
