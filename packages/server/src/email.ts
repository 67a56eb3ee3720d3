/** Account emails as the server stores and looks them up, for every slice that takes one (sign-up, members). */
import { LatchkeyError } from "@latchkey/core";

/** Trims and lowercases an email; throws LK_EMAIL_INVALID unless it looks like name@domain. */
export function normalizeEmail(input: string): string {
  const email = input.trim().toLowerCase();
  // Deliberately loose (RFC 5322 is not the point): one @, something on each side, a dot in the domain, no
  // whitespace, control or format characters, and a length any column holds. Format characters (zero-width and
  // bidirectional controls) are invisible: organisation member lists would show such an account as another.
  if (email.length > 254 || !/^[^\s@\p{Cc}\p{Cf}]+@[^\s@\p{Cc}\p{Cf}]+\.[^\s@\p{Cc}\p{Cf}]+$/u.test(email)) {
    throw new LatchkeyError("LK_EMAIL_INVALID");
  }
  return email;
}
