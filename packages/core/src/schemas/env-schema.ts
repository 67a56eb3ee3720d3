/**
 * latchkey.json's `envSchema` (env-schema.ts says what it means), declared once. The CLI's hot path reads it with
 * env-schema.ts's zod-free parseEnvSchema, which a property test holds to {@link envSchemaSchema}
 * (env-schema.test.ts beside this file); both apply the rules env-schema.ts exports.
 *
 * The structure (which variable names, which rule properties of which types, the format names, no empty pattern
 * or default) is {@link envSchemaShapeSchema}. {@link envSchemaSchema} adds the checks that run a rule's regular
 * expression and format tests: the pattern compiles, the default satisfies the format and the pattern. The
 * server takes only the shape, since running a project's pattern there would let a hostile one (with a default
 * crafted to backtrack) hold its event loop for minutes.
 */
import * as z from "zod/mini";
import { isEnvVariableName } from "../dotenv.js";
import { ENV_FORMATS, FORMATS, PROTO_KEY_PROBLEM, compilePattern } from "../env-schema.js";
import { isTable } from "./rules.js";

// The structure's messages never quote what was sent, not even a key: the server answers a push with them, and a
// reader of latchkey.json has the key from the issue's path (checkSchema).
const RULE = "an envSchema rule";

function flag(name: string) {
  return z.optional(z.boolean({ error: `${RULE}'s "${name}" must be true or false` }));
}

function nonEmpty(name: string, empty: string) {
  return z.optional(
    z.string({ error: `${RULE}'s "${name}" must be a string` }).check(z.minLength(1, { error: empty })),
  );
}

const ruleShape = {
  /** The variable must be set (to a non-empty value) unless it has a default. */
  required: flag("required"),
  /** The value must be in this format. */
  format: z.optional(
    z.enum(ENV_FORMATS, { error: `${RULE}'s "format" must be one of ${ENV_FORMATS.join(", ")}` }),
  ),
  /** The whole value must match this regular expression (compiled with the `u` flag). */
  pattern: nonEmpty("pattern", `${RULE}'s "pattern" is empty: remove it or write a pattern`),
  /** Used when the variable is absent or empty; satisfies `format` and `pattern`. */
  default: nonEmpty("default", `${RULE}'s "default" is empty, which means unset: remove it`),
  /** The value is a secret: tools redact it, and messages do not even give its length. */
  secret: flag("secret"),
  /** Free text for people reading the schema or a report. */
  description: z.optional(z.string({ error: `${RULE}'s "description" must be a string` })),
};

const NOT_A_RULE = `${RULE} must be an object of rule properties`;

/** One rule's structure, with no pattern run. */
const ruleStructure = z.pipe(
  z.custom<Record<string, unknown>>(isTable, { error: NOT_A_RULE }),
  z.strictObject(ruleShape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `${RULE} may only have the properties ${Object.keys(ruleShape).join(", ")}`
        : NOT_A_RULE,
  }),
);

/** The checks of a rule that run its pattern and format tests, on a rule whose structure holds. */
function ruleExpressions(
  rule: z.output<typeof ruleStructure>,
  ctx: z.core.$RefinementCtx<z.output<typeof ruleStructure>>,
): void {
  let regexp: RegExp | undefined;
  if (rule.pattern !== undefined) {
    const compiled = compilePattern(rule.pattern);
    if ("error" in compiled) {
      ctx.addIssue({
        code: "custom",
        path: ["pattern"],
        input: rule.pattern,
        message: `${RULE}'s "pattern" is not a valid regular expression with the u flag: ${compiled.error}`,
      });
      return;
    }
    regexp = compiled.regexp;
  }
  // Never quote the default: a schema is committed to git, but it may still hold a real credential.
  if (rule.default === undefined) return;
  if (rule.format !== undefined && !FORMATS[rule.format].test(rule.default)) {
    ctx.addIssue({
      code: "custom",
      path: ["default"],
      input: rule,
      message: `${RULE}'s "default" is not a valid ${rule.format}: expected ${FORMATS[rule.format].expected}`,
    });
  }
  if (regexp !== undefined && !regexp.test(rule.default)) {
    ctx.addIssue({
      code: "custom",
      path: ["default"],
      input: rule,
      message: `${RULE}'s "default" does not match its "pattern", which must match the whole value`,
    });
  }
}

/**
 * The structure of one rule of `envSchema`, its pattern and format tests not run: what the sync server accepts.
 */
export const envRuleShapeSchema = ruleStructure;

/** One rule of `envSchema`, checked entirely: the structure, then the pattern and the default. */
export const envRuleSchema = ruleStructure.check(z.superRefine(ruleExpressions));

/** The rule for one variable (env-schema.ts's checkEnv applies it). */
export type EnvRule = Readonly<z.output<typeof envRuleSchema>>;

/** A validated `envSchema`: variable name -> rule. parseEnvSchema's is null-prototype and frozen. */
export type EnvSchema = Readonly<Record<string, EnvRule>>;

const NOT_A_SCHEMA = "envSchema must be an object mapping variable names to rules";
const VARIABLE_NAME =
  "envSchema keys must be variable names (letters, digits and _, not starting with a digit)";

/**
 * An `envSchema` whose rules are `rule`. The raw object is checked for a `__proto__` member first: a record
 * drops that one without a word, which would switch its rule off silently.
 */
function envSchemaOf<Rule extends z.ZodMiniType>(rule: Rule) {
  return z.pipe(
    z
      .custom<Record<string, unknown>>(isTable, { error: NOT_A_SCHEMA })
      .check(z.refine((raw) => !Object.hasOwn(raw, "__proto__"), { error: PROTO_KEY_PROBLEM })),
    z.record(z.string().check(z.refine(isEnvVariableName)), rule, {
      error: (issue) => (issue.code === "invalid_key" ? VARIABLE_NAME : NOT_A_SCHEMA),
    }),
  );
}

/** latchkey.json's `envSchema`: variable name -> {@link envRuleSchema}. */
export const envSchemaSchema = envSchemaOf(envRuleSchema);

/**
 * The structure of an `envSchema`, no pattern or format test run (rules are {@link envRuleShapeSchema}): what a
 * push to the sync server may carry.
 */
export const envSchemaShapeSchema = envSchemaOf(envRuleShapeSchema);
