/**
 * What the read views share: loading a server read into the view's state, the loading and failure states, times
 * shown in the reader's locale, and the note that the dashboard reads only. Nothing here logs: a failure is shown
 * in the page (its code, message and hint), never written to the console.
 */
import { isLatchkeyError } from "@latchkey/core";
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

/** A read under way, done, or failed. */
export type Loaded<T> = { kind: "loading" } | { kind: "failed"; error: unknown } | { kind: "ok"; value: T };

/**
 * Runs `load` when the view mounts and whenever `keys` change, and again on `reload()`; an answer that arrives after
 * the view moved on (new keys, unmounted) is dropped.
 */
export function useLoad<T>(load: () => Promise<T>, keys: readonly unknown[]): [Loaded<T>, () => void] {
  const [state, setState] = useState<Loaded<T>>({ kind: "loading" });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    setState({ kind: "loading" });
    load().then(
      (value) => current && setState({ kind: "ok", value }),
      (error: unknown) => current && setState({ kind: "failed", error }),
    );
    return () => {
      current = false;
    };
    // `load` is a new function on every render; what it reads is in `keys`.
  }, [...keys, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return [state, reload];
}

/** The words of a failure: a LatchkeyError's message and hint, else the error's message. */
export function describeError(error: unknown): { message: string; hint?: string; code?: string } {
  if (isLatchkeyError(error)) return { message: error.message, hint: error.hint, code: error.code };
  return { message: error instanceof Error ? error.message : "Something went wrong." };
}

/** A failed read, said in the page. */
export function Failure(props: { error: unknown; what: string; retry?: () => void }) {
  const { message, hint, code } = describeError(props.error);
  return (
    <div class="failure" role="alert">
      <p>
        <strong>{props.what} could not be loaded.</strong> {message}
        {code !== undefined && <span class="muted"> ({code})</span>}
      </p>
      {hint !== undefined && <p class="muted">{hint}</p>}
      {props.retry && (
        <button type="button" onClick={props.retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** The loading state of a read. */
export function Loading(props: { what: string }) {
  return (
    <p role="status" class="muted">
      Loading {props.what}…
    </p>
  );
}

/** Renders `state`: loading, the failure, or `children(value)`. */
export function Show<T>(props: {
  state: Loaded<T>;
  what: string;
  retry?: () => void;
  children: (value: T) => ComponentChildren;
}) {
  const { state } = props;
  if (state.kind === "loading") return <Loading what={props.what} />;
  if (state.kind === "failed") {
    return (
      <Failure
        error={state.error}
        what={capitalize(props.what)}
        {...(props.retry ? { retry: props.retry } : {})}
      />
    );
  }
  return <>{props.children(state.value)}</>;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** An ISO time in the reader's locale, with the exact time in `datetime` (and as a tooltip). */
export function Time(props: { iso: string | null | undefined; empty?: string }) {
  if (props.iso === null || props.iso === undefined)
    return <span class="muted">{props.empty ?? "never"}</span>;
  const date = new Date(props.iso);
  if (Number.isNaN(date.getTime())) return <span>{props.iso}</span>;
  return (
    <time dateTime={props.iso} title={props.iso}>
      {date.toLocaleString()}
    </time>
  );
}

/** The note every view that shows vault data carries: the dashboard reads; changes are made with the CLI. */
export function ReadOnlyNote() {
  return (
    <p class="note read-only">
      Read only: the dashboard shows your vaults but does not change them. Editing secrets stays in the
      command line (<code>latchkey env set</code>, <code>latchkey env push</code>).
    </p>
  );
}

/** A short form of a long identifier (a fingerprint, a vault id), the whole of it in the tooltip. */
export function Short(props: { id: string; length?: number }) {
  const length = props.length ?? 8;
  return (
    <code title={props.id} class="short-id">
      {props.id.length > length ? `${props.id.slice(0, length)}…` : props.id}
    </code>
  );
}

/**
 * A table's own scroll container, so a wide table scrolls inside it instead of widening the page at narrow widths.
 * While its table is wider than it, it is a labelled region in the tab order: a keyboard user can focus it and
 * scroll it with the arrow keys (a table of plain text has nothing else to focus).
 */
export function TableWrap(props: { label: string; children: ComponentChildren }) {
  const wrap = useRef<HTMLDivElement>(null);
  const [scrolls, setScrolls] = useState(false);
  useEffect(() => {
    const element = wrap.current;
    if (!element) return;
    const measure = () => setScrolls(element.scrollWidth > element.clientWidth);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    if (element.firstElementChild) observer.observe(element.firstElementChild);
    return () => observer.disconnect();
  }, []);
  return (
    <div
      ref={wrap}
      class="table-wrap"
      {...(scrolls ? { role: "region", "aria-label": props.label, tabIndex: 0 } : {})}
    >
      {props.children}
    </div>
  );
}
