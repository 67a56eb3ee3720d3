// What the AWS adapters (aws-ssm.ts, aws-sm.ts) share: the SDK client's configuration, which takes nothing from the
// machine, an HTTP handler that sends the SDK's signed requests through platformRequest (the CLI's one HTTP client
// and its one retry loop), and the mapping of AWS's error types onto the error catalogue.
//
// The SDK's own defaults would read the machine: AWS_* variables and ~/.aws/config name a profile, an endpoint
// (AWS_ENDPOINT_URL, a profile's endpoint_url: the signed values would go there), FIPS or dual-stack endpoints,
// retry counts and modes. A push must go to the connection's region with the connection's key, so every one of
// those settings is given here, and configured endpoints are ignored. Only types are imported from the SDK: the
// adapters load it with import() when a push runs.
import { LatchkeyError, type AwsSmConfig, type AwsSsmConfig } from "@latchkey/core";
import { platformRequest, type AdapterInput } from "./adapter.js";

/** The platforms the AWS SDK serves. */
export type AwsPlatform = "aws-ssm" | "aws-sm";

/** An IAM access key, as the SDK takes static credentials. */
export interface AwsAccessKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/**
 * The access key of a connection's credential, `ACCESS_KEY_ID:SECRET_ACCESS_KEY`; anything else is LK_USAGE, which
 * never quotes it.
 */
export function awsAccessKey(platform: AwsPlatform, credential: string): AwsAccessKey {
  const match = /^([A-Z0-9]{16,128}):([A-Za-z0-9/+=_-]{16,128})$/.exec(credential.trim());
  if (match === null)
    throw new LatchkeyError("LK_USAGE", {
      message: `${platform}: the connection's credential is not an AWS access key written as ACCESS_KEY_ID:SECRET_ACCESS_KEY.`,
      hint: `Connect again (\`latchkey env platforms disconnect NAME\`, then \`latchkey env platforms connect ${platform}\`) and give the IAM user's access key id and secret access key joined by a colon.`,
    });
  return { accessKeyId: match[1]!, secretAccessKey: match[2]! };
}

/** The part of a smithy HTTP request the handler reads (the SDK's HttpRequest). */
export interface SmithyRequest {
  readonly method: string;
  readonly protocol: string;
  readonly hostname: string;
  readonly port?: number;
  readonly path: string;
  readonly query: Record<string, string | (string | null)[] | null>;
  readonly headers: Record<string, string>;
  readonly body?: unknown;
}

/** A smithy HTTP response with its whole body read. */
export interface SmithyResponse {
  readonly statusCode: number;
  readonly reason?: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
}

/** A smithy HttpHandler: the SDK hands it each signed request. */
export interface AwsRequestHandler {
  handle(request: SmithyRequest): Promise<{ response: SmithyResponse }>;
  updateHttpClientConfig(): void;
  httpHandlerConfigs(): Record<string, never>;
}

// AWS answers throttling with HTTP 400; SSM's TooManyUpdates is the same for writes to one parameter.
const THROTTLING = new Set(["ThrottlingException", "TooManyUpdates"]);
// The answers to a key AWS does not know, a signature that does not verify, or a key without the permission.
const UNAUTHORIZED = new Set([
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "IncompleteSignature",
  "IncompleteSignatureException",
  "InvalidClientTokenId",
  "MissingAuthenticationToken",
  "MissingAuthenticationTokenException",
  "ExpiredTokenException",
  "AccessDeniedException",
]);

/**
 * The error type of an AWS JSON answer: the X-Amzn-ErrorType header, else the body's `__type` (either may carry a
 * namespace before "#" or a URL after ":"), or null.
 */
export function awsErrorType(header: string | null, body: string): string | null {
  let type = header;
  if (type === null) {
    try {
      const json: unknown = JSON.parse(body);
      const member =
        typeof json === "object" && json !== null ? (json as Record<string, unknown>)["__type"] : null;
      type = typeof member === "string" ? member : null;
    } catch {
      type = null;
    }
  }
  if (type === null) return null;
  const name = type.split(":")[0]!.split("#").pop()!.trim();
  return /^[A-Za-z0-9_.]{1,100}$/.test(name) ? name : null;
}

async function isThrottling(response: Response): Promise<boolean> {
  if (response.status !== 400) return false;
  const body = await response
    .clone()
    .text()
    .catch(() => "");
  const type = awsErrorType(response.headers.get("x-amzn-errortype"), body);
  return type !== null && THROTTLING.has(type);
}

// RFC 3986 unreserved characters stay; everything else is escaped, as SigV4's canonical query has it.
function escape(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * The SDK's HTTP handler: each signed request goes out through {@link platformRequest}, so it is traced with its
 * credential redacted, a throttling answer is retried in the one retry loop (the SDK's own retries are off), and an
 * unreachable host or a 401/403 is the same catalogue error as for every platform.
 */
export function awsRequestHandler(input: AdapterInput<unknown>, platform: AwsPlatform): AwsRequestHandler {
  return {
    async handle(request) {
      const query = Object.entries(request.query).flatMap(([key, value]) =>
        (Array.isArray(value) ? value : [value]).map((v) =>
          v === null ? escape(key) : `${escape(key)}=${escape(v)}`,
        ),
      );
      const port = request.port === undefined ? "" : `:${request.port}`;
      const url = `${request.protocol}//${request.hostname}${port}${request.path}${query.length > 0 ? `?${query.join("&")}` : ""}`;
      // fetch writes Host and Content-Length itself, from the URL and the body: the same values the SDK signed.
      const headers = Object.fromEntries(
        Object.entries(request.headers).filter(([name]) => !/^(host|content-length)$/i.test(name)),
      );
      const { body } = request;
      if (body !== undefined && body !== null && typeof body !== "string" && !(body instanceof Uint8Array))
        throw new LatchkeyError("LK_PLATFORM_FAILED", {
          message: `${platform}: the AWS SDK built a request body Latchkey cannot send.`,
        });
      const response = await platformRequest(input.ctx, input.verbose ?? 0, {
        platform,
        url,
        method: request.method,
        headers,
        ...(body === undefined || body === null ? {} : { body }),
        throttled: isThrottling,
      });
      const answer: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        answer[name] = value;
      });
      return {
        response: {
          statusCode: response.status,
          reason: response.statusText,
          headers: answer,
          body: new Uint8Array(await response.arrayBuffer()),
        },
      };
    },
    updateHttpClientConfig() {},
    httpHandlerConfigs: () => ({}),
  };
}

/**
 * The SDK client configuration for a connection: its region, its access key, its endpoint (`baseUrl`, else the
 * region's standard one), one attempt per SDK call and {@link awsRequestHandler}; everything the SDK would otherwise
 * look up on the machine is fixed.
 */
export function awsClientConfig(input: AdapterInput<AwsSsmConfig | AwsSmConfig>, platform: AwsPlatform) {
  const { config, ctx } = input;
  return {
    region: config.region,
    credentials: awsAccessKey(platform, input.credential),
    ...(config.baseUrl === undefined ? {} : { endpoint: config.baseUrl }),
    ignoreConfiguredEndpointUrls: true,
    useFipsEndpoint: false,
    useDualstackEndpoint: false,
    maxAttempts: 1,
    retryMode: "standard",
    defaultsMode: "standard" as const,
    authSchemePreference: ["sigv4"],
    userAgentAppId: "latchkey",
    // The signer reads Date.now(); the offset makes it sign with the context's clock instead.
    systemClockOffset: ctx.clock.now() - Date.now(),
    requestHandler: awsRequestHandler(input, platform),
  };
}

/** A client's middleware stack, as far as {@link withoutMachineMiddleware} needs it. */
export interface MiddlewareStackLike {
  remove(name: string): boolean;
}

/**
 * Removes the SDK middleware that reads the machine into every request: the recursion detection (Lambda's trace id
 * from the environment) and the user agent (the operating system, AWS_EXECUTION_ENV).
 */
export function withoutMachineMiddleware(stack: MiddlewareStackLike): void {
  stack.remove("recursionDetectionMiddleware");
  stack.remove("getUserAgentMiddleware");
}

/** The AWS error type of an error the SDK threw for an AWS answer, or null for anything else. */
export function awsErrorName(error: unknown): string | null {
  if (typeof error !== "object" || error === null || error instanceof LatchkeyError) return null;
  const { name, $metadata } = error as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  if (typeof name !== "string" || typeof $metadata?.httpStatusCode !== "number") return null;
  return /^[A-Za-z0-9_.]{1,100}$/.test(name) ? name : "UnknownError";
}

/**
 * The catalogue error for what an SDK call threw: a refused credential is LK_PLATFORM_UNAUTHORIZED, any other AWS
 * error LK_PLATFORM_FAILED naming its type (never its message, which may quote a value), and an answer the SDK
 * could not read LK_PLATFORM_FAILED too. Errors of the catalogue pass through.
 */
export function awsFailure(platform: AwsPlatform, what: string, error: unknown): LatchkeyError {
  if (error instanceof LatchkeyError) return error;
  const type = awsErrorName(error);
  if (type === null)
    return new LatchkeyError("LK_PLATFORM_FAILED", {
      message: `${platform}: the answer to ${what} is not the documented shape.`,
      details: { platform },
    });
  const status = (error as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode;
  if (UNAUTHORIZED.has(type))
    return new LatchkeyError("LK_PLATFORM_UNAUTHORIZED", {
      message: `${platform} refused the connection's credential (${type}, HTTP ${status}).`,
      details: { platform, status, type },
    });
  return new LatchkeyError("LK_PLATFORM_FAILED", {
    message: `${platform}: ${what} was refused with ${type} (HTTP ${status}).`,
    details: { platform, status, type },
  });
}

/** Whether a push should stop sending after this error: the next request would meet the same. */
export function stopsPush(error: LatchkeyError): boolean {
  return (
    error.code === "LK_PLATFORM_UNAUTHORIZED" ||
    error.code === "LK_PLATFORM_UNREACHABLE" ||
    error.code === "LK_PLATFORM_RATE_LIMITED"
  );
}
