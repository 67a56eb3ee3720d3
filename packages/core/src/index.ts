export * from "./errors.js";
export * from "./errors-doc.js";
export {
  concatBytes,
  constantTimeEqual,
  fromBase64,
  fromHex,
  toBase64,
  toHex,
  utf8Decode,
  utf8Encode,
} from "./bytes.js";
export { randomBytes, randomId, randomKey } from "./random.js";
export { hkdfSha256 } from "./hkdf.js";
export { isUuid } from "./uuid.js";
export { hmacSha256, verifyHmacSha256 } from "./hmac.js";
export {
  ENVELOPE_OVERHEAD,
  associatedData,
  checkEnvelopeKey,
  envelopeGcmAdditionalData,
  envelopeNonce,
  joinEnvelope,
  splitEnvelope,
  openEnvelope,
  sealEnvelope,
  type AssociatedDataValue,
  type SealEnvelopeOptions,
} from "./envelope.js";
export {
  formatWrappedKey,
  generateX25519KeyPair,
  parseWrappedKey,
  unwrapKeyForRecipient,
  wrapKeyForRecipient,
  x25519PublicKey,
  x25519SharedSecret,
  type WrapKeyOptions,
  type WrappedKeyParts,
  type X25519KeyPair,
} from "./x25519.js";
export { formatDotenv, formatJson, formatShell, isEnvVariableName, parseDotenv } from "./dotenv.js";
export {
  ENV_FORMATS,
  assertEnv,
  checkEnv,
  isSecretKey,
  matchesFormat,
  parseEnvSchema,
  validateValue,
  type CheckEnvOptions,
  type CheckEnvResult,
  type EnvFormat,
  type EnvRule,
  type EnvSchema,
  type Violation,
} from "./env-schema.js";
export {
  API_PREFIX,
  CLI_CLIENT_ID,
  MAX_VAULT_DOCUMENT_BYTES,
  OIDC_PATH,
  REQUEST_ID_HEADER,
  SIGNATURE_HEADER,
  SIGNATURE_VERSION,
  canonicalVaultId,
  isRequestId,
  signaturePreamble,
  syncBlobContext,
  type ApiErrorBody,
  type AuditEntry,
  type AuditLogResponse,
  type MeResponse,
  type PullResponse,
  type PushRequest,
  type PushResponse,
  type RewrapRequest,
  type RewrapResponse,
  type SignedRequest,
} from "./sync-wire.js";
