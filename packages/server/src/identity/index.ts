/** The identity slice: accounts, the OpenID provider and its sign-in pages, bearer-token authentication. */
export { createIdentity, TTL, type Identity, type IdentityOptions } from "./identity.js";
export {
  createAccount,
  enrollTotp,
  findAccountByEmail,
  findAccountById,
  normalizeEmail,
  totpCode,
  argon2Hasher,
  type Account,
  type PasswordHasher,
} from "./accounts.js";
export { deriveIdentityKeys, type IdentityKeys } from "./keys.js";
export { ACCOUNT_LIMIT, IP_LIMIT, LIMITS, WINDOW_MS, type SignInLimits } from "./rate-limit.js";
