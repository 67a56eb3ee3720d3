/**
 * The account's pairings: the unfinished ones and those of the last 24 hours, as the server lists them, with a way
 * to revoke one this browser's session takes part in, and every unfinished one of the account at once (from any
 * session: the server's revoke-all). A consumed pairing has nothing left to revoke on the server: the browser
 * that took it holds its keys in memory until it reloads or signs out, and "Sign out everywhere" ends its session.
 */
import { isLatchkeyError, type PairingStatus, type PairingSummary } from "@latchkey/core";
import { useState } from "preact/hooks";
import { describeError, Show, TableWrap, Time, useLoad } from "./common.js";
import { listPairings, revokeAllPairings, revokePairing } from "./reads.js";
import "./views.css";

/** The statuses a pairing can still be revoked in. */
const UNFINISHED: ReadonlySet<PairingStatus> = new Set(["pending", "joined", "revealed", "approved"]);

function PairingRows(props: { pairings: PairingSummary[]; onChanged: (message: string) => void }) {
  const [busy, setBusy] = useState<string | null>(null);
  const revoke = async (pairing: PairingSummary) => {
    setBusy(pairing.pairingId);
    try {
      await revokePairing(pairing.pairingId);
      props.onChanged(`Revoked the pairing "${pairing.label}".`);
    } catch (error) {
      props.onChanged(
        isLatchkeyError(error, "LK_PAIRING_NOT_FOUND")
          ? `The pairing "${pairing.label}" belongs to another session: use "Revoke every unfinished pairing".`
          : `The pairing "${pairing.label}" was not revoked: ${describeError(error).message}`,
      );
    } finally {
      setBusy(null);
    }
  };
  return (
    <TableWrap label="Pairings of your account, newest first">
      <table>
        <caption class="visually-hidden">Pairings of your account, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Label</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {props.pairings.map((pairing) => (
            <tr key={pairing.pairingId}>
              <th scope="row">{pairing.label}</th>
              <td>{pairing.status}</td>
              <td>
                <Time iso={pairing.createdAt} />
              </td>
              <td>
                <Time iso={pairing.expiresAt} />
              </td>
              <td>
                {UNFINISHED.has(pairing.status) && (
                  <button
                    type="button"
                    class="danger"
                    onClick={() => void revoke(pairing)}
                    disabled={busy !== null}
                  >
                    Revoke<span class="visually-hidden"> the pairing {pairing.label}</span>
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

/** The pairings view. */
export function PairingsView() {
  const [state, reload] = useLoad(() => listPairings(), []);
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  const changed = (text: string) => {
    setMessage(text);
    reload();
  };
  const revokeAll = async () => {
    setBusy(true);
    try {
      const count = await revokeAllPairings();
      changed(count === 1 ? "Revoked 1 unfinished pairing." : `Revoked ${count} unfinished pairings.`);
    } catch (error) {
      setMessage(`Nothing was revoked: ${describeError(error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="pairings-heading">
      <h1 id="pairings-heading">Pairings</h1>
      <p class="muted">
        A pairing hands this account's keys to a new browser or machine once another machine approves it with{" "}
        <code>latchkey env pair CODE</code>. Unfinished ones can be revoked here; one that finished left its
        keys with that browser until it reloads or signs out (Sign out everywhere ends every session).
      </p>
      <p role="status" aria-live="polite">
        {message}
      </p>
      <Show state={state} what="your pairings" retry={reload}>
        {(pairings) =>
          pairings.length === 0 ? (
            <p class="muted">No pairing in the last 24 hours.</p>
          ) : (
            <>
              <PairingRows pairings={pairings} onChanged={changed} />
              <p>
                <button
                  type="button"
                  class="danger"
                  onClick={() => void revokeAll()}
                  disabled={busy || !pairings.some((p) => UNFINISHED.has(p.status))}
                >
                  Revoke every unfinished pairing
                </button>
              </p>
            </>
          )
        }
      </Show>
    </section>
  );
}
