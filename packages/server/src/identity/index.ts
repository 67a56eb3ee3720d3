/** The identity slice: accounts, the OpenID provider and its sign-in pages, bearer-token authentication. */
export { createIdentity, type Identity, type IdentityOptions } from "./identity.js";
export { TTL } from "./provider.js";
export {
  createAccount,
  enrollTotp,
  normalizeEmail,
  totpCode,
  argon2Hasher,
  type PasswordHasher,
} from "./accounts.js";
export { findAccountByEmail, findAccountById, type Account } from "./data.js";
export { deriveIdentityKeys, type IdentityKeys } from "./keys.js";
export { ACCOUNT_LIMIT, IP_LIMIT, LIMITS, WINDOW_MS, type SignInLimits } from "./rate-limit.js";
