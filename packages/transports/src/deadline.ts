import { TransportError } from './errors.js';

/** A time limit and/or an AbortSignal for one operation (connect, accept, handshake). */
export interface DeadlineOptions {
  /** Milliseconds before the operation fails with E_TIMEOUT; undefined or ≤ 0 = no limit. */
  timeoutMs?: number;
  /** Aborting it fails the operation with E_CANCELLED. */
  signal?: AbortSignal;
}

/**
 * Arms a deadline: `expire` is called once with E_TIMEOUT or E_CANCELLED (naming `what` and
 * `uri`) unless the returned disarm function is called first. An already-aborted signal
 * expires synchronously.
 */
export function armDeadline(
  opts: DeadlineOptions,
  what: string,
  uri: string,
  expire: (err: TransportError) => void,
): () => void {
  const { timeoutMs, signal } = opts;
  let armed = true;
  const disarm = (): void => {
    if (!armed) return;
    armed = false;
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  };
  const fire = (err: TransportError): void => {
    if (!armed) return;
    disarm();
    expire(err);
  };
  const onAbort = (): void => fire(cancelled(what, uri, signal as AbortSignal));
  const timer =
    timeoutMs !== undefined && timeoutMs > 0
      ? setTimeout(
          () => fire(new TransportError('E_TIMEOUT', `${what} ${uri}: no result after ${timeoutMs} ms`, { uri })),
          timeoutMs,
        )
      : null;
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return disarm;
}

/**
 * Races `work` against the deadline. When the deadline wins, `undo` releases what `work` had
 * started (a half-open socket, a spawned process) and the promise rejects with E_TIMEOUT or
 * E_CANCELLED.
 */
export function withDeadline<T>(
  work: Promise<T>,
  opts: DeadlineOptions,
  what: string,
  uri: string,
  undo: () => void,
): Promise<T> {
  if (!(opts.timeoutMs !== undefined && opts.timeoutMs > 0) && !opts.signal) return work;
  return new Promise<T>((resolve, reject) => {
    const disarm = armDeadline(opts, what, uri, (err) => {
      work.catch(() => undefined);
      undo();
      reject(err);
    });
    work.then(
      (v) => {
        disarm();
        resolve(v);
      },
      (e: unknown) => {
        disarm();
        reject(e);
      },
    );
  });
}

function cancelled(what: string, uri: string, signal: AbortSignal): TransportError {
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted');
  return new TransportError('E_CANCELLED', `${what} ${uri}: cancelled (${reason})`, { uri, cause: signal.reason });
}
