/**
 * The step-up modal: before a pairing, the server wants a fresh proof that the person at this browser knows the
 * account's password (and TOTP code when the account has one). It asks `GET /step-up/method` first and shows the
 * password field, the password and code fields, or — for an account that cannot re-authenticate — why not and what
 * to do. The factors go to `POST /step-up/cookie`, which sets the proof as an HttpOnly cookie: this page never
 * sees it. The fields are read from the form when it is sent and emptied after, never kept in component state.
 */
import { isLatchkeyError, type StepUpMethodResponse } from "@latchkey/core";
import { useEffect, useRef, useState } from "preact/hooks";
import type { ApiClient } from "../api.js";
import { keepTabInside } from "../focus-trap.js";
import { stepUpForPairing, stepUpMethod } from "./requests.js";

/** What the dialog says about a refusal: the server's words, and what to do. */
function refusalText(error: unknown): string {
  if (isLatchkeyError(error, "LK_STEP_UP_FAILED")) {
    return "The password or the code is wrong. Type them again; each attempt counts toward the sign-in limits.";
  }
  if (isLatchkeyError(error, "LK_RATE_LIMITED")) {
    const seconds = Number(error.details?.retryAfterSeconds);
    return `Too many failed attempts. Try again${Number.isFinite(seconds) && seconds > 0 ? ` in ${seconds} seconds` : " later"}.`;
  }
  if (error instanceof Error) {
    const hint = isLatchkeyError(error) ? error.hint : undefined;
    return hint === undefined ? error.message : `${error.message} ${hint}`;
  }
  return String(error);
}

/**
 * The modal. `onGranted` runs once the server has set the proof (the pairing may start); `onCancel` when the user
 * closes it (Escape, Cancel) or the account cannot re-authenticate.
 */
export function StepUpDialog(props: { client: ApiClient; onGranted: () => void; onCancel: () => void }) {
  const { client, onGranted, onCancel } = props;
  const dialog = useRef<HTMLDialogElement>(null);
  const form = useRef<HTMLFormElement>(null);
  const [method, setMethod] = useState<StepUpMethodResponse | null>(null);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const element = dialog.current;
    // showModal: the rest of the page is inert, Escape closes it, and focus moves into it.
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);
  useEffect(() => {
    stepUpMethod(client).then(setMethod, (failure: unknown) => setError(refusalText(failure)));
  }, [client]);
  // showModal focused the first control there was (the fields come with the method): move focus to the first
  // field, or to Close, so the dialog's first stop is where the user types and nothing focused is removed.
  useEffect(() => {
    if (method === null) return;
    const first = dialog.current?.querySelector<HTMLElement>("input, button.primary");
    first?.focus();
  }, [method]);

  const submit = async (event: Event) => {
    event.preventDefault();
    const fields = form.current;
    if (!fields || method === null || busy) return;
    const password = fields.elements.namedItem("password") as HTMLInputElement | null;
    const totp = fields.elements.namedItem("totp") as HTMLInputElement | null;
    if (!password || password.value === "") {
      setError("Type your password.");
      password?.focus();
      return;
    }
    const code = totp?.value.replace(/\s+/g, "") ?? "";
    if (totp && !/^[0-9]{6}$/.test(code)) {
      setError("The code from your authenticator app is 6 digits.");
      totp.focus();
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await stepUpForPairing(client, { password: password.value, ...(totp ? { totp: code } : {}) });
      password.value = "";
      onGranted();
    } catch (failure) {
      password.value = "";
      if (totp) totp.value = "";
      setError(refusalText(failure));
      setBusy(false);
      password.focus();
    }
  };

  const unavailable = method?.method === "unavailable";
  return (
    <dialog
      ref={dialog}
      class="step-up"
      aria-labelledby="step-up-heading"
      aria-describedby="step-up-why"
      onCancel={(event) => {
        event.preventDefault();
        onCancel();
      }}
      onKeyDown={(event) => keepTabInside(event, dialog.current)}
    >
      <h2 id="step-up-heading">
        {unavailable ? "Your account cannot confirm it is you" : "Confirm it is you"}
      </h2>
      {unavailable ? (
        <>
          <p id="step-up-why">
            Pairing this browser needs your password, and{" "}
            {method.reason ?? "this server cannot check one for your account."}
          </p>
          <p>{method.hint ?? "Ask the server's administrator for help."}</p>
          <p class="muted">
            Until then, read your vaults with the command line: <code>latchkey env pull</code>.
          </p>
          <div class="actions">
            <button type="button" class="primary" onClick={onCancel}>
              Close
            </button>
          </div>
        </>
      ) : (
        <form ref={form} onSubmit={(event) => void submit(event)} noValidate>
          <p id="step-up-why">
            Pairing gives this browser the key that opens your vaults, so the server asks for your password
            {method?.method === "password+totp" ? " and a code from your authenticator app" : ""} first.
          </p>
          {error && (
            <p class="error" role="alert" id="step-up-error">
              {error}
            </p>
          )}
          {method === null && !error && <p role="status">Asking the server how to confirm it is you…</p>}
          {method !== null && (
            <>
              <div class="field">
                <label for="step-up-password">Password</label>
                <input
                  id="step-up-password"
                  name="password"
                  type="password"
                  autocomplete="current-password"
                  required
                  autoFocus
                  aria-invalid={error ? "true" : undefined}
                  aria-describedby={error ? "step-up-error" : undefined}
                />
              </div>
              {method.method === "password+totp" && (
                <div class="field">
                  <label for="step-up-totp">Code from your authenticator app</label>
                  <input
                    id="step-up-totp"
                    name="totp"
                    type="text"
                    inputMode="numeric"
                    autocomplete="one-time-code"
                    pattern="[0-9]{6}"
                    maxLength={6}
                    required
                  />
                </div>
              )}
            </>
          )}
          <div class="actions">
            <button type="submit" class="primary" disabled={method === null || busy}>
              {busy ? "Checking…" : "Continue"}
            </button>
            <button type="button" onClick={onCancel}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}
