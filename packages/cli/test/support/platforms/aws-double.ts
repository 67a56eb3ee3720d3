// A loopback AWS endpoint for the two services the AWS adapters call, in the JSON 1.1 protocol: every request is
// `POST /` with `Content-Type: application/x-amz-json-1.1` and `X-Amz-Target: AmazonSSM.<Operation>` (Systems
// Manager, signing name "ssm") or `secretsmanager.<Operation>` (Secrets Manager, "secretsmanager"), a JSON object
// body, and a SigV4 signature that sigv4.ts verifies from AWS's documented algorithm for the service the target
// names, in the double's region, at the double's clock. Errors are AWS's: HTTP 400 (500 for an internal error) with
// `{"__type": ..., "message": ...}`. It refuses an unknown target, a missing required member, a member the
// operation does not define, a member of the wrong type, and the values AWS would refuse (a bad parameter name, a
// KMS key on a non-SecureString, more than 10 names to delete, a reused ClientRequestToken with another value).
// A ClientRequestToken becomes the new version's VersionId, and a request repeating a token with the same
// SecretString is ignored and answered as a success (AWS's idempotency rule for PutSecretValue and CreateSecret), so
// a retried write makes one version. Operations: SSM GetParametersByPath, PutParameter, DeleteParameters; Secrets
// Manager GetSecretValue, PutSecretValue, CreateSecret.
//
// Imported by vitest suites only: node: builtins only.
import { createHash } from "node:crypto";
import {
  Refused,
  expectShape,
  isObject,
  startDouble,
  type Answer,
  type Double,
  type RecordedRequest,
} from "./double.js";
import { verifySigV4 } from "./sigv4.js";

/** One stored SSM parameter. */
export interface SsmParameter {
  value: string;
  type: "String" | "StringList" | "SecureString";
  keyId?: string;
  version: number;
}

/** One stored Secrets Manager secret: its current value and what made it. */
export interface SmSecret {
  secretString: string;
  kmsKeyId?: string;
  versionId: string;
  /** ClientRequestToken → the SecretString it wrote, for AWS's idempotency rule. */
  tokens: Map<string, string>;
  versions: number;
}

/** A running AWS double. */
export interface AwsDouble extends Double {
  /** SSM parameters by full name. */
  readonly parameters: Map<string, SsmParameter>;
  /** Secrets by name. */
  readonly secrets: Map<string, SmSecret>;
  /** Parameter names (full) whose PutParameter is refused with ParameterLimitExceeded, for a partial failure. */
  readonly refuseNames: Set<string>;
  /**
   * Queues an AWS error answer (HTTP 400 with this `__type`; default ThrottlingException) for the next request to
   * `target`, after its signature was verified.
   */
  failNext(target: string, type?: string): void;
  /** The X-Amz-Target of each request received (faulted ones too), in order. */
  targets(): string[];
  /** Forgets every access key once `count` requests to `target` have succeeded (a key deactivated mid-push). */
  revokeAfter(target: string, count: number): void;
  /**
   * Makes the next request to `target` take effect and then answer HTTP 500 InternalServiceError, as when AWS
   * applied a write but its answer was lost: a retry must not apply it twice.
   */
  failAfterApply(target: string): void;
}

type Kind = "string" | "boolean" | "integer" | "strings" | "objects" | "blob";

interface Operation {
  readonly service: "ssm" | "secretsmanager";
  readonly required: readonly string[];
  readonly members: Readonly<Record<string, Kind>>;
}

// The members each operation defines (the SDK models of client-ssm and client-secrets-manager 3.1178.0).
const OPERATIONS: Readonly<Record<string, Operation>> = {
  "AmazonSSM.GetParametersByPath": {
    service: "ssm",
    required: ["Path"],
    members: {
      Path: "string",
      Recursive: "boolean",
      ParameterFilters: "objects",
      WithDecryption: "boolean",
      MaxResults: "integer",
      NextToken: "string",
    },
  },
  "AmazonSSM.PutParameter": {
    service: "ssm",
    required: ["Name", "Value"],
    members: {
      Name: "string",
      Description: "string",
      Value: "string",
      Type: "string",
      KeyId: "string",
      Overwrite: "boolean",
      AllowedPattern: "string",
      Tags: "objects",
      Tier: "string",
      Policies: "string",
      DataType: "string",
    },
  },
  "AmazonSSM.DeleteParameters": {
    service: "ssm",
    required: ["Names"],
    members: { Names: "strings" },
  },
  "secretsmanager.GetSecretValue": {
    service: "secretsmanager",
    required: ["SecretId"],
    members: { SecretId: "string", VersionId: "string", VersionStage: "string" },
  },
  "secretsmanager.PutSecretValue": {
    service: "secretsmanager",
    required: ["SecretId"],
    members: {
      SecretId: "string",
      ClientRequestToken: "string",
      SecretBinary: "blob",
      SecretString: "string",
      VersionStages: "strings",
      RotationToken: "string",
    },
  },
  "secretsmanager.CreateSecret": {
    service: "secretsmanager",
    required: ["Name"],
    members: {
      Name: "string",
      ClientRequestToken: "string",
      Description: "string",
      KmsKeyId: "string",
      SecretBinary: "blob",
      SecretString: "string",
      Tags: "objects",
      AddReplicaRegions: "objects",
      ForceOverwriteReplicaSecret: "boolean",
      Type: "string",
      CrossAccountPrimaryARN: "string",
    },
  },
};

function hasKind(value: unknown, kind: Kind): boolean {
  switch (kind) {
    case "string":
    case "blob":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "integer":
      return Number.isInteger(value);
    case "strings":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
    case "objects":
      return Array.isArray(value) && value.every(isObject);
  }
}

/** An AWS error answer. */
class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const JSON_11 = "application/x-amz-json-1.1";
const PARAMETER_NAME = /^[A-Za-z0-9_./-]{1,1011}$/;
const ACCOUNT = "123456789012";

/**
 * Starts an AWS double for `region` that knows the access keys in `keys` (id → secret), with its clock at `now`
 * (for the X-Amz-Date check); `pageSize` caps a GetParametersByPath page below MaxResults, as AWS may.
 */
export async function startAwsDouble(options: {
  keys: Record<string, string>;
  region: string;
  now: () => number;
  pageSize?: number;
}): Promise<AwsDouble> {
  const keys = new Map(Object.entries(options.keys));
  const parameters = new Map<string, SsmParameter>();
  const secrets = new Map<string, SmSecret>();
  const refuseNames = new Set<string>();
  const queued: { target: string; type: string }[] = [];
  let revoke: { target: string; left: number } | undefined;
  const applyThenFail: string[] = [];
  let serial = 1;

  const versionId = (): string => {
    const hex = createHash("sha256").update(`version-${serial++}`).digest("hex");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
  };
  const secretArn = (name: string) =>
    `arn:aws:secretsmanager:${options.region}:${ACCOUNT}:secret:${name}-AbCdEf`;

  const ssm = (operation: string, body: Record<string, unknown>): Record<string, unknown> => {
    if (operation === "GetParametersByPath") {
      const path = body.Path as string;
      expectShape(path.startsWith("/"), "Path must start with /");
      const recursive = body.Recursive === true;
      const decrypt = body.WithDecryption === true;
      const max = (body.MaxResults as number | undefined) ?? 10;
      if (max < 1 || max > 10) throw new AwsError("ValidationException", "MaxResults must be 1 to 10.");
      const prefix = path.endsWith("/") ? path : `${path}/`;
      const names = [...parameters.keys()]
        .filter((name) => name.startsWith(prefix) && (recursive || !name.slice(prefix.length).includes("/")))
        .sort();
      const start = typeof body.NextToken === "string" ? Number(body.NextToken.replace(/^page-/, "")) : 0;
      if (!Number.isInteger(start) || start < 0 || start > names.length)
        throw new AwsError("InvalidNextToken", "The specified token is not valid.");
      const size = Math.min(max, options.pageSize ?? max);
      const page = names.slice(start, start + size);
      return {
        Parameters: page.map((name) => {
          const p = parameters.get(name)!;
          return {
            Name: name,
            Type: p.type,
            // Without decryption a SecureString's value is its ciphertext, never the plaintext.
            Value:
              p.type === "SecureString" && !decrypt
                ? Buffer.from(`kms:${createHash("sha256").update(p.value).digest("hex")}`).toString("base64")
                : p.value,
            Version: p.version,
            LastModifiedDate: Math.floor(options.now() / 1000),
            ARN: `arn:aws:ssm:${options.region}:${ACCOUNT}:parameter${name}`,
            DataType: "text",
          };
        }),
        ...(start + size < names.length ? { NextToken: `page-${start + size}` } : {}),
      };
    }
    if (operation === "PutParameter") {
      const name = body.Name as string;
      const value = body.Value as string;
      const type = (body.Type as string | undefined) ?? "String";
      if (!PARAMETER_NAME.test(name) || /^\/?(aws|ssm)/i.test(name))
        throw new AwsError(
          "ValidationException",
          'Parameter name: can\'t be prefixed with "aws" or "ssm" and must match [a-zA-Z0-9_.-/].',
        );
      if (type !== "String" && type !== "StringList" && type !== "SecureString")
        throw new AwsError(
          "ValidationException",
          "1 validation error detected: Value at 'type' failed to satisfy constraint.",
        );
      if (body.KeyId !== undefined && type !== "SecureString")
        throw new AwsError("ValidationException", "KeyId is required for SecureString type parameter only.");
      if (value.length === 0 || value.length > 4096)
        throw new AwsError(
          "ValidationException",
          "Standard tier parameters support a maximum parameter value of 4096 characters.",
        );
      if (body.Tags !== undefined && body.Overwrite === true)
        throw new AwsError(
          "ValidationException",
          "Invalid request: tags and overwrite can't be used together.",
        );
      if (refuseNames.has(name))
        throw new AwsError(
          "ParameterLimitExceeded",
          "You have exceeded the number of parameters for this AWS account.",
        );
      const existing = parameters.get(name);
      if (existing !== undefined && body.Overwrite !== true)
        throw new AwsError(
          "ParameterAlreadyExists",
          "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
        );
      const version = (existing?.version ?? 0) + 1;
      parameters.set(name, {
        value,
        type,
        ...(typeof body.KeyId === "string" ? { keyId: body.KeyId } : {}),
        version,
      });
      return { Version: version, Tier: "Standard" };
    }
    // DeleteParameters
    const names = body.Names as string[];
    if (names.length < 1 || names.length > 10)
      throw new AwsError(
        "ValidationException",
        "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10.",
      );
    const deleted: string[] = [];
    const invalid: string[] = [];
    for (const name of names) {
      if (parameters.delete(name)) deleted.push(name);
      else invalid.push(name);
    }
    return { DeletedParameters: deleted, InvalidParameters: invalid };
  };

  const sm = (operation: string, body: Record<string, unknown>): Record<string, unknown> => {
    const token = body.ClientRequestToken;
    if (token !== undefined)
      expectShape(
        typeof token === "string" && /^[A-Za-z0-9-]{32,64}$/.test(token),
        "ClientRequestToken must be 32 to 64 letters, digits or hyphens",
      );
    if (operation === "GetSecretValue") {
      const secret = secrets.get(body.SecretId as string);
      if (secret === undefined)
        throw new AwsError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
      return {
        ARN: secretArn(body.SecretId as string),
        Name: body.SecretId,
        VersionId: secret.versionId,
        SecretString: secret.secretString,
        VersionStages: ["AWSCURRENT"],
        CreatedDate: Math.floor(options.now() / 1000),
      };
    }
    const text = body.SecretString;
    expectShape(body.SecretBinary === undefined, "this double stores SecretString only");
    if (typeof text !== "string" || text.length === 0 || text.length > 65_536)
      throw new AwsError(
        "InvalidParameterException",
        "You must provide a SecretString of 1 to 65536 characters.",
      );
    if (operation === "PutSecretValue") {
      const secret = secrets.get(body.SecretId as string);
      if (secret === undefined)
        throw new AwsError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
      if (typeof token === "string") {
        const earlier = secret.tokens.get(token);
        if (earlier !== undefined && earlier !== text)
          throw new AwsError(
            "ResourceExistsException",
            "You can't modify an existing version, you can only create a new version.",
          );
        // The same token and value again: the request is ignored, and answered with the version it made.
        if (earlier !== undefined)
          return {
            ARN: secretArn(body.SecretId as string),
            Name: body.SecretId,
            VersionId: token,
            VersionStages: secret.versionId === token ? ["AWSCURRENT"] : [],
          };
        secret.tokens.set(token, text);
      }
      secret.secretString = text;
      secret.versionId = typeof token === "string" ? token : versionId();
      secret.versions++;
      return {
        ARN: secretArn(body.SecretId as string),
        Name: body.SecretId,
        VersionId: secret.versionId,
        VersionStages: ["AWSCURRENT"],
      };
    }
    // CreateSecret
    const name = body.Name as string;
    if (!/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(name))
      throw new AwsError(
        "ValidationException",
        "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
      );
    const existing = secrets.get(name);
    // A retried CreateSecret (the same token and value) is ignored and answered as the first was.
    if (existing !== undefined && typeof token === "string" && existing.tokens.get(token) === text)
      return { ARN: secretArn(name), Name: name, VersionId: token };
    if (existing !== undefined)
      throw new AwsError(
        "ResourceExistsException",
        `The operation failed because the secret ${name} already exists.`,
      );
    const created: SmSecret = {
      secretString: text,
      ...(typeof body.KmsKeyId === "string" ? { kmsKeyId: body.KmsKeyId } : {}),
      versionId: typeof token === "string" ? token : versionId(),
      tokens: new Map(typeof token === "string" ? [[token, text]] : []),
      versions: 1,
    };
    secrets.set(name, created);
    return { ARN: secretArn(name), Name: name, VersionId: created.versionId };
  };

  // AWS's Date header is the double's clock: the SDK corrects its signing clock by a Date more than 5 minutes off.
  const awsHeaders = () => ({ "content-type": JSON_11, date: new Date(options.now()).toUTCString() });

  const handle = (request: RecordedRequest): Answer => {
    const target = String(request.headers["x-amz-target"] ?? "");
    try {
      expectShape(request.method === "POST", "the JSON 1.1 protocol is POST only");
      expectShape(request.url === "/", "the JSON 1.1 protocol posts to /");
      expectShape(request.headers["content-type"] === JSON_11, `content-type must be ${JSON_11}`);
      const operation = OPERATIONS[target];
      // AWS answers UnknownOperationException; it is a request of the wrong shape all the same.
      expectShape(operation !== undefined, `unknown target ${target || "(none)"}`);
      const refusal = verifySigV4(request, {
        keys,
        region: options.region,
        service: operation.service,
        now: options.now(),
      });
      if (refusal !== null) throw new AwsError(refusal.type, refusal.message);
      const failing = queued.findIndex((t) => t.target === target);
      if (failing >= 0) {
        const [t] = queued.splice(failing, 1);
        throw new AwsError(
          t!.type,
          t!.type === "ThrottlingException" ? "Rate exceeded" : "Refused by the test.",
        );
      }
      let body: unknown;
      try {
        body = JSON.parse(request.body);
      } catch {
        throw new AwsError("SerializationException", "The body is not JSON.");
      }
      expectShape(isObject(body), "the body must be a JSON object");
      for (const [member, value] of Object.entries(body)) {
        const kind = operation.members[member];
        expectShape(kind !== undefined, `${target} has no member ${member}`);
        expectShape(hasKind(value, kind), `${target}: ${member} must be of type ${kind}`);
      }
      for (const member of operation.required)
        expectShape(body[member] !== undefined, `${target}: ${member} is required`);
      const name = target.slice(target.indexOf(".") + 1);
      const answer = operation.service === "ssm" ? ssm(name, body) : sm(name, body);
      if (revoke?.target === target && --revoke.left === 0) keys.clear();
      const lost = applyThenFail.indexOf(target);
      if (lost >= 0) {
        applyThenFail.splice(lost, 1);
        throw new AwsError("InternalServiceError", "An error occurred on the server side.", 500);
      }
      return { status: 200, body: answer, headers: awsHeaders() };
    } catch (error) {
      if (error instanceof Refused) {
        double.refusals.push(`${target}: ${error.message}`);
        return {
          status: 400,
          body: {
            __type: /^unknown target/.test(error.message)
              ? "UnknownOperationException"
              : "SerializationException",
            message: error.message,
          },
          headers: awsHeaders(),
        };
      }
      if (!(error instanceof AwsError)) throw error;
      return {
        status: error.status,
        body: { __type: error.type, message: error.message },
        headers: awsHeaders(),
      };
    }
  };

  const double = await startDouble((request) => handle(request));
  return Object.assign(double, {
    parameters,
    secrets,
    refuseNames,
    failNext: (target: string, type = "ThrottlingException") => {
      queued.push({ target, type });
    },
    targets: () => double.requests.map((r) => String(r.headers["x-amz-target"] ?? "")),
    revokeAfter: (target: string, count: number) => {
      revoke = { target, left: count };
    },
    failAfterApply: (target: string) => {
      applyThenFail.push(target);
    },
  });
}
