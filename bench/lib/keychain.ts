// The keychain scenario's Secret Service: gnome-keyring with an unlocked login keyring on a private D-Bus session,
// from the test harness (never the developer's own session). Missing components are a reason to report, not an
// error: the scenario then shows as "not run (reason)".
import {
  secretServiceAvailable,
  startSecretService,
} from "../../packages/cli/test/support/secret-service.ts";

/** A running private Secret Service. */
export interface KeychainSession {
  /** DBUS_SESSION_BUS_ADDRESS, HOME and XDG_* for clients of this session. */
  readonly env: Readonly<Record<string, string>>;
  stop(): Promise<void>;
}

/** Starts gnome-keyring in a private D-Bus session, or says why it cannot. */
export async function startKeychain(): Promise<
  { ok: true; session: KeychainSession } | { ok: false; reason: string }
> {
  const available = secretServiceAvailable();
  if (!available.ok)
    return { ok: false, reason: available.reason ?? "no Secret Service harness on this machine" };
  try {
    const session = await startSecretService({ variant: "unlocked" });
    return { ok: true, session: { env: session.env, stop: () => session.stop() } };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, reason: message.replace(/\s+/g, " ").trim() };
  }
}
