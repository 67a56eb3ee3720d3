// AWS Secrets Manager through @aws-sdk/client-secrets-manager (JSON 1.1 protocol, `X-Amz-Target:
// secretsmanager.<Operation>`; https://docs.aws.amazon.com/secretsmanager/latest/apireference/):
// - GetSecretValue {SecretId}                                          the secret's current SecretString;
//   ResourceNotFoundException when there is no such secret yet
// - PutSecretValue {SecretId, ClientRequestToken, SecretString}       a new current version
// - CreateSecret {Name, ClientRequestToken, SecretString, KmsKeyId}   the first version, when the secret is absent
// The environment is ONE secret whose SecretString is a JSON object of every variable (name → value), the shape the
// console's key/value editor and most runtimes' Secrets Manager integrations read. A push reads it, changes the
// plan's names (keeping names the vault does not have unless they are pruned) and writes the whole object back as
// one new version: all or nothing. The read and the write are not atomic, and cannot be made so (Secrets Manager has
// no conditional write): a change made in between is replaced, its version kept as AWSPREVIOUS (docs/platforms.md).
// The SDK is loaded with import() only when a push or pull runs, and sends through
// aws.ts's handler: the CLI's HTTP client and its one retry loop.
import {
  LatchkeyError,
  awsSmSecretValueSchema,
  checkSchema,
  utf8Encode,
  uuidV4,
  type AwsSmConfig,
} from "@latchkey/core";
import {
  failedAll,
  reasonOf,
  type AdapterInput,
  type ApplyPlan,
  type ApplyResult,
  type PlatformAdapter,
} from "./adapter.js";
import { awsClientConfig, awsErrorName, awsFailure, stopsPush, withoutMachineMiddleware } from "./aws.js";

/** The largest SecretString Secrets Manager stores, in bytes. */
export const SECRET_STRING_MAX_BYTES = 65_536;

/** An AWS Secrets Manager adapter for one secret holding an environment as a JSON object. */
export function awsSmAdapter(input: AdapterInput<AwsSmConfig>): PlatformAdapter {
  const { ctx, config } = input;

  let opened: ReturnType<typeof open> | undefined;
  async function open() {
    const sdk = await import("@aws-sdk/client-secrets-manager");
    const client = new sdk.SecretsManagerClient(awsClientConfig(input, "aws-sm"));
    withoutMachineMiddleware(client.middlewareStack);
    return { sdk, client };
  }
  const secretsManager = () => (opened ??= open());

  /** The secret's variables, or null when the secret does not exist. */
  const read = async (): Promise<Record<string, string> | null> => {
    const { sdk, client } = await secretsManager();
    const what = "reading the secret";
    let answer;
    try {
      answer = await client.send(new sdk.GetSecretValueCommand({ SecretId: config.secretId }));
    } catch (error) {
      if (awsErrorName(error) === "ResourceNotFoundException") return null;
      throw awsFailure("aws-sm", what, error);
    }
    let parsed: unknown;
    try {
      parsed = typeof answer.SecretString === "string" ? JSON.parse(answer.SecretString) : undefined;
    } catch {
      parsed = undefined;
    }
    const checked = checkSchema(awsSmSecretValueSchema, parsed);
    // Never the value itself: the message names only what is wrong with it.
    if (!checked.ok)
      throw new LatchkeyError("LK_PLATFORM_FAILED", {
        message: `aws-sm: the secret ${config.secretId} does not hold a JSON object of string values, so Latchkey will not read or overwrite it.`,
        hint: "Connect to a secret Latchkey manages (a new name is created on the first push), or store the secret's value as a JSON object of strings.",
        details: { platform: "aws-sm" },
      });
    return Object.fromEntries(Object.entries(checked.value));
  };

  const apply = async (plan: ApplyPlan): Promise<ApplyResult> => {
    const upsert = Object.keys(plan.upsert).sort();
    if (upsert.length === 0 && plan.remove.length === 0) return { written: [], removed: [], failed: [] };
    const current = await read();
    const next: Record<string, string> = { ...current };
    const present = plan.remove.filter((name) => Object.hasOwn(next, name));
    // A name already absent is as asked (dropped meanwhile, or by an earlier attempt): removed, whatever the write.
    const absent = plan.remove.filter((name) => !Object.hasOwn(next, name)).sort();
    if (upsert.length === 0 && present.length === 0) return { written: [], removed: absent, failed: [] };
    for (const name of present) delete next[name];
    for (const name of upsert) next[name] = plan.upsert[name]!;
    const text = JSON.stringify(
      Object.fromEntries(Object.entries(next).sort(([a], [b]) => (a < b ? -1 : 1))),
    );
    const sent = [...upsert, ...present];
    if (utf8Encode(text).length > SECRET_STRING_MAX_BYTES)
      return {
        written: [],
        removed: absent,
        failed: failedAll(
          sent,
          `the secret would exceed Secrets Manager's ${SECRET_STRING_MAX_BYTES} bytes; nothing was written`,
        ),
      };

    const { sdk, client } = await secretsManager();
    // A fresh token per push: AWS makes a request with a token it has seen a no-op, and refuses one with another value.
    const token = uuidV4(ctx.random.bytes(16));
    try {
      if (current === null)
        await client.send(
          new sdk.CreateSecretCommand({
            Name: config.secretId,
            ClientRequestToken: token,
            SecretString: text,
            ...(config.kmsKeyId === undefined ? {} : { KmsKeyId: config.kmsKeyId }),
          }),
        );
      else
        await client.send(
          new sdk.PutSecretValueCommand({
            SecretId: config.secretId,
            ClientRequestToken: token,
            SecretString: text,
          }),
        );
    } catch (error) {
      const failure = awsFailure(
        "aws-sm",
        current === null ? "creating the secret" : "writing the secret",
        error,
      );
      if (stopsPush(failure)) throw failure;
      // One version holds every name, so every name failed with it.
      return { written: [], removed: absent, failed: failedAll(sent, reasonOf(failure)) };
    }
    return {
      written: upsert,
      removed: [...plan.remove].sort(),
      failed: [],
    };
  };

  return {
    platform: "aws-sm",
    listNames: async () => Object.keys((await read()) ?? {}).sort(),
    apply,
    pull: async () => ({ values: (await read()) ?? {}, withheld: [] }),
  };
}
