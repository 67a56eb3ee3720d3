/**
 * Unlock vaults: pairs this browser with a machine that has the user's vaults (docs/dashboard.md "Pairing a
 * browser"), then holds the keys for the views. The step-up modal first; then the code to type into
 * `latchkey env pair CODE` on that machine, and the 6 digits both sides show; Cancel, or leaving this view,
 * revokes the pairing, while a reload continues it (the waiting pairing is in IndexedDB). "Forget this browser"
 * deletes what the dashboard keeps here.
 */
import { checkSchema, isLatchkeyError, MAX_PAIRING_LABEL_LENGTH, pairingLabelSchema } from "@latchkey/core";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { BASE, Link } from "../router.js";
import { useAuth } from "../session.js";
import { forgetThisBrowser, pairingDeps } from "./browser.js";
import { formatDigits, resumePairing, startPairing, type PairingProgress } from "./flow.js";
import { accountId } from "./requests.js";
import { StepUpDialog } from "./step-up-dialog.js";
import { dropKeys, holdPairingKeys, useHeldKeys } from "./unlock.js";
import "./pairing.css";

/** Where this view is. */
export const UNLOCK_PATH = `${BASE}unlock`;

type Phase =
  | { kind: "loading" }
  | { kind: "idle"; notice?: string }
  | { kind: "step-up" }
  | { kind: "running"; progress: PairingProgress | null }
  | { kind: "failed"; message: string };

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const hint = isLatchkeyError(error) ? error.hint : undefined;
  return hint === undefined ? error.message : `${error.message} ${hint}`;
}

/** A label from what the browser says of its platform, without anything a label may not hold. */
function defaultLabel(): string {
  const platform =
    (navigator as Navigator & { userAgentData?: { platform?: string } }).userAgentData?.platform ??
    navigator.platform;
  const label = `Browser on ${platform || "this computer"}`.slice(0, MAX_PAIRING_LABEL_LENGTH);
  return checkSchema(pairingLabelSchema, label).ok ? label : "Browser";
}

function time(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** A short line for views that need the keys: the vaults are locked here, and where to unlock them. */
export function LockedNotice() {
  return (
    <p class="notice">
      Your vaults are locked in this browser. <Link href={UNLOCK_PATH}>Unlock vaults</Link> by pairing it with
      a machine that has them.
    </p>
  );
}

/** The view. */
export function UnlockView() {
  const auth = useAuth();
  const keys = useHeldKeys();
  const [phase, setPhase] = useState<Phase>({ kind: "loading" });
  const [label, setLabel] = useState(defaultLabel);
  const [labelError, setLabelError] = useState<string>();
  const account = useRef<string | null>(null);
  const run = useRef<AbortController | null>(null);
  // The run under way: forgetting waits for it to revoke and forget its record before deleting the database.
  const running = useRef<Promise<void> | null>(null);
  const startButton = useRef<HTMLButtonElement>(null);
  // Focus goes back to "Pair this browser" once the closed modal's phase has rendered it enabled again.
  const refocusStart = useRef(false);
  useEffect(() => {
    if (!refocusStart.current || phase.kind === "step-up") return;
    refocusStart.current = false;
    startButton.current?.focus();
  }, [phase]);

  const onProgress = (progress: PairingProgress) => setPhase({ kind: "running", progress });
  const settle = (promise: Promise<void>): void => {
    running.current = promise.catch((error: unknown) => {
      if (isLatchkeyError(error, "LK_CANCELLED")) {
        setPhase({ kind: "idle", notice: "Pairing cancelled: it was revoked, and nothing was handed over." });
      } else {
        setPhase({ kind: "failed", message: describe(error) });
      }
    });
  };

  useEffect(() => {
    const controller = new AbortController();
    run.current = controller;
    settle(
      (async () => {
        const id = await accountId(api());
        account.current = id;
        const received = await resumePairing(pairingDeps(), id, onProgress, controller.signal);
        // Taken even when the view was left meanwhile: the server handed the keys over once.
        if (received !== null) await holdPairingKeys(id, received);
        if (!controller.signal.aborted) setPhase({ kind: "idle" });
      })(),
    );
    // Leaving the view cancels a pairing under way (revoked); a reload does not run this, and continues it.
    return () => run.current?.abort();
  }, []);

  const begin = () => {
    const checked = checkSchema(pairingLabelSchema, label.trim());
    if (!checked.ok) {
      setLabelError(
        `A name of 1 to ${MAX_PAIRING_LABEL_LENGTH} characters, without control characters: your machine shows it.`,
      );
      return;
    }
    setLabelError(undefined);
    setPhase({ kind: "step-up" });
  };

  const granted = () => {
    const id = account.current;
    if (id === null) return;
    run.current?.abort();
    const controller = new AbortController();
    run.current = controller;
    setPhase({ kind: "running", progress: null });
    settle(
      (async () => {
        const received = await startPairing(pairingDeps(), id, label.trim(), onProgress, controller.signal);
        await holdPairingKeys(id, received);
        setPhase({ kind: "idle" });
      })(),
    );
  };

  const forget = async () => {
    run.current?.abort();
    await running.current;
    await forgetThisBrowser(account.current);
    setPhase({
      kind: "idle",
      notice: "This browser holds nothing of your account any more: keys and pairings forgotten.",
    });
  };

  const email = auth.kind === "signed-in" && auth.email !== "" ? auth.email : "you";
  const progress = phase.kind === "running" ? phase.progress : null;
  return (
    <section aria-labelledby="unlock-heading" class="unlock">
      <h1 id="unlock-heading">Unlock vaults</h1>
      <p class="muted">
        The server never sees your secrets: they are decrypted here, with a key this browser receives from one
        of your machines by pairing. The key stays in this page's memory only; a reload or a sign-out forgets
        it. Reading only: editing secrets stays in the command line.
      </p>

      {phase.kind === "idle" && phase.notice && (
        <p class="notice" role="status">
          {phase.notice}
        </p>
      )}
      {phase.kind === "failed" && (
        <p class="error" role="alert">
          {phase.message}
        </p>
      )}

      {keys !== null && phase.kind !== "running" ? (
        <div class="unlocked">
          <h2>This browser is unlocked</h2>
          <p>
            It holds your wrapping key
            {keys.sharingKey === null
              ? ". The machine that approved had no sharing key, so organisation vaults stay locked here."
              : ` and your sharing key (fingerprint ${keys.sharingKey.fingerprint.slice(0, 16).replace(/(.{4})(?!$)/g, "$1 ")}…).`}
          </p>
          <p>
            <Link href={BASE}>Go to your vaults</Link>
          </p>
          <div class="actions">
            <button type="button" onClick={() => dropKeys()}>
              Lock
            </button>
          </div>
        </div>
      ) : phase.kind === "running" ? (
        <div class="pairing" aria-live="polite">
          {progress === null && <p role="status">Starting the pairing…</p>}
          {progress?.step === "waiting" && (
            <>
              <h2>Pairing code</h2>
              <p class="code" id="pairing-code">
                {progress.code}
              </p>
              <p>On a machine that has your vaults, signed in as {email}, run:</p>
              <pre>
                <code id="pairing-command">latchkey env pair {progress.code}</code>
              </pre>
              <p class="muted">
                The code is valid until {time(progress.expiresAt)}. Waiting for your machine to join…
              </p>
            </>
          )}
          {progress?.step === "compare" && (
            <>
              <h2>Compare the numbers</h2>
              <p>Your machine joined. It shows a number; this browser shows:</p>
              <p class="digits" id="pairing-digits">
                {formatDigits(progress.digits)}
              </p>
              <p>
                This browser&apos;s key fingerprint: <code>{progress.fingerprint}</code>
              </p>
              <p>
                Approve on your machine only if it shows the same number. If they differ, answer no: someone
                may be relaying the connection.
              </p>
            </>
          )}
          {progress?.step === "finishing" && <p role="status">Approved. Opening the keys…</p>}
          <div class="actions">
            <button
              type="button"
              onClick={() => run.current?.abort()}
              disabled={progress?.step === "finishing"}
            >
              Cancel pairing
            </button>
          </div>
        </div>
      ) : (
        <div class="start">
          <h2>Pair this browser</h2>
          <p>
            You will confirm your password, then approve this browser on a machine where you use Latchkey,
            with
            <code> latchkey env pair CODE</code>.
          </p>
          <div class="field">
            <label for="pairing-label">Name this browser (your machine shows it)</label>
            <input
              id="pairing-label"
              type="text"
              value={label}
              maxLength={MAX_PAIRING_LABEL_LENGTH}
              onInput={(event) => setLabel(event.currentTarget.value)}
              aria-invalid={labelError ? "true" : undefined}
              aria-describedby={labelError ? "pairing-label-error" : undefined}
            />
            {labelError && (
              <p class="error" id="pairing-label-error">
                {labelError}
              </p>
            )}
          </div>
          <div class="actions">
            <button
              type="button"
              class="primary"
              ref={startButton}
              onClick={begin}
              disabled={phase.kind === "loading" || phase.kind === "step-up"}
            >
              Pair this browser
            </button>
          </div>
        </div>
      )}

      <div class="forget">
        <h2>Forget this browser</h2>
        <p class="muted">
          Drops the keys from this page, revokes a pairing under way and deletes what the dashboard keeps in
          this browser&apos;s storage.
        </p>
        <button type="button" class="danger" onClick={() => void forget()}>
          Forget this browser
        </button>
      </div>

      {phase.kind === "step-up" && (
        <StepUpDialog
          client={api()}
          onGranted={granted}
          onCancel={() => {
            refocusStart.current = true;
            setPhase({ kind: "idle" });
          }}
        />
      )}
    </section>
  );
}
