// AWS Systems Manager Parameter Store through @aws-sdk/client-ssm (JSON 1.1 protocol, `X-Amz-Target:
// AmazonSSM.<Operation>`; https://docs.aws.amazon.com/systems-manager/latest/APIReference/):
// - GetParametersByPath {Path, Recursive: false, WithDecryption, MaxResults, NextToken}  a page of the parameters
//   directly under the connection's path (values decrypted for a pull only)
// - PutParameter {Name, Value, Type: "SecureString", Overwrite: true, KeyId}             one parameter per variable
// - DeleteParameters {Names}                                                            up to 10 per call; answers
//   DeletedParameters and InvalidParameters (names it did not have: already gone, so counted removed)
// A variable NAME is the parameter `path` + NAME. The SDK is loaded with import() only when a push or pull runs, and
// sends through aws.ts's handler: the CLI's HTTP client and its one retry loop.
import type { AwsSsmConfig, LatchkeyError } from "@latchkey/core";
import {
  failedAll,
  reasonOf,
  type AdapterInput,
  type ApplyPlan,
  type ApplyResult,
  type FailedName,
  type PlatformAdapter,
} from "./adapter.js";
import { awsClientConfig, awsFailure, stopsPush, withoutMachineMiddleware } from "./aws.js";

/** How many PutParameter calls are in flight at once: SSM's write quota is a few per second. */
const CONCURRENCY = 4;
/** The most names one DeleteParameters call takes. */
const DELETE_BATCH = 10;
/** The most parameters one GetParametersByPath page holds. */
const PAGE = 10;

/** A variable name that stays one level below the path as an SSM parameter name. */
export function isSsmParameterName(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,1011}$/.test(name);
}

/** An AWS SSM Parameter Store adapter for the parameters directly under one path. */
export function awsSsmAdapter(input: AdapterInput<AwsSsmConfig>): PlatformAdapter {
  const { config } = input;
  const prefix = config.path;

  let opened: ReturnType<typeof open> | undefined;
  async function open() {
    const sdk = await import("@aws-sdk/client-ssm");
    const client = new sdk.SSMClient(awsClientConfig(input, "aws-ssm"));
    withoutMachineMiddleware(client.middlewareStack);
    return { sdk, client };
  }
  const ssm = () => (opened ??= open());

  /** Every parameter directly under the path: name (without the path) → value (undefined unless decrypted). */
  const byPath = async (decrypt: boolean): Promise<Map<string, string | undefined>> => {
    const { sdk, client } = await ssm();
    const found = new Map<string, string | undefined>();
    let next: string | undefined;
    do {
      const what = "listing the parameters";
      const page = await client
        .send(
          new sdk.GetParametersByPathCommand({
            Path: prefix,
            Recursive: false,
            WithDecryption: decrypt,
            MaxResults: PAGE,
            ...(next === undefined ? {} : { NextToken: next }),
          }),
        )
        .catch((error: unknown) => {
          throw awsFailure("aws-ssm", what, error);
        });
      for (const parameter of page.Parameters ?? []) {
        const { Name: name, Value: value } = parameter;
        if (
          typeof name !== "string" ||
          !name.startsWith(prefix) ||
          !isSsmParameterName(name.slice(prefix.length))
        )
          throw awsFailure("aws-ssm", what, new Error("a parameter outside the path"));
        if (decrypt && typeof value !== "string")
          throw awsFailure("aws-ssm", what, new Error("a parameter without a value"));
        found.set(name.slice(prefix.length), decrypt ? value : undefined);
      }
      next = page.NextToken === undefined || page.NextToken === "" ? undefined : page.NextToken;
    } while (next !== undefined);
    return found;
  };

  const apply = async (plan: ApplyPlan): Promise<ApplyResult> => {
    const written: string[] = [];
    const removed: string[] = [];
    const failed: FailedName[] = [];
    // The first error that makes further requests pointless (a refused key, an unreachable host, throttling that
    // outlasted the retries): names not yet sent fail with its reason.
    let stopped: LatchkeyError | undefined;
    const valid = Object.keys(plan.upsert).filter((name) => {
      if (isSsmParameterName(name)) return true;
      failed.push({ name, reason: "not a valid SSM parameter name (letters, digits, _ . -)" });
      return false;
    });
    if (valid.length === 0 && plan.remove.length === 0) return { written, removed, failed };
    const { sdk, client } = await ssm();

    const queue = [...valid];
    const worker = async (): Promise<void> => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        if (stopped !== undefined) {
          failed.push({ name, reason: reasonOf(stopped) });
          continue;
        }
        try {
          await client.send(
            new sdk.PutParameterCommand({
              Name: `${prefix}${name}`,
              Value: plan.upsert[name]!,
              Type: "SecureString",
              Overwrite: true,
              ...(config.kmsKeyId === undefined ? {} : { KeyId: config.kmsKeyId }),
            }),
          );
          written.push(name);
        } catch (error) {
          const failure = awsFailure("aws-ssm", "writing a parameter", error);
          if (stopsPush(failure)) stopped ??= failure;
          failed.push({ name, reason: reasonOf(failure) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, valid.length) }, worker));

    for (let i = 0; i < plan.remove.length; i += DELETE_BATCH) {
      const batch = plan.remove.slice(i, i + DELETE_BATCH);
      if (stopped !== undefined) {
        failed.push(...failedAll(batch, reasonOf(stopped)));
        continue;
      }
      try {
        const answer = await client.send(
          new sdk.DeleteParametersCommand({ Names: batch.map((name) => `${prefix}${name}`) }),
        );
        const deleted = new Set(answer.DeletedParameters ?? []);
        const invalid = new Set(answer.InvalidParameters ?? []);
        for (const name of batch) {
          // A name SSM did not have is as asked (deleted meanwhile, or by an earlier attempt): removed.
          if (deleted.has(`${prefix}${name}`) || invalid.has(`${prefix}${name}`)) removed.push(name);
          else failed.push({ name, reason: "SSM did not confirm the deletion" });
        }
      } catch (error) {
        const failure = awsFailure("aws-ssm", "deleting parameters", error);
        if (stopsPush(failure)) stopped ??= failure;
        failed.push(...failedAll(batch, reasonOf(failure)));
      }
    }

    // Nothing confirmed: the error itself says it best (a refused key, an unreachable host).
    if (stopped !== undefined && written.length === 0 && removed.length === 0) throw stopped;
    const byName = (a: FailedName, b: FailedName) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    return { written: written.sort(), removed: removed.sort(), failed: failed.sort(byName) };
  };

  return {
    platform: "aws-ssm",
    listNames: async () => [...(await byPath(false)).keys()].sort(),
    apply,
    pull: async () => {
      const values: Record<string, string> = {};
      for (const [name, value] of await byPath(true)) values[name] = value!;
      return { values, withheld: [] };
    },
  };
}
