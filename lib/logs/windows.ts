/**
 * Detector windows inside one session. Message ids 0 and 1 are reserved so that a window is a plain array of
 * non-negative ids usable as an embedding index: 0 = padding before the session's first line, 1 = the
 * end-of-session event (a session that stops early is itself a deviation). Distinct messages start at 2.
 */
import { invalidParameterError } from '../errors';

/** Padding before the first message of a session. */
export const PAD_MESSAGE = 0;
/** The end-of-session event, appended after a session's last message. */
export const END_MESSAGE = 1;
/** Id of the first distinct masked message. */
export const FIRST_MESSAGE_ID = 2;

/**
 * Calls fn(t) once per window of a session (n messages → n windows, plus the end-event window when `end`),
 * with `win` (length `size`) filled in place: its LAST entry is the target (the t-th message, or END_MESSAGE
 * for the end window) and the entries before it are the preceding messages, padded at the start with
 * PAD_MESSAGE. The one definition of the window layout; allocation-free for hot loops.
 */
export function forEachWindow(messageIds: ArrayLike<number>, size: number, win: Int32Array, end: boolean, fn: (t: number) => void): void {
  const n = messageIds.length;
  const count = n + (end ? 1 : 0);
  for (let t = 0; t < count; t++) {
    // Entry j of window t is the message at t - (size-1) + j.
    for (let j = 0; j < size; j++) {
      const i = t - (size - 1) + j;
      win[j] = i < 0 ? PAD_MESSAGE : i < n ? messageIds[i] : END_MESSAGE;
    }
    fn(t);
  }
}

/**
 * All windows of `size` message ids of one session, flat: window t (0 ≤ t < count) is
 * `out.subarray(t*size, (t+1)*size)`, laid out as forEachWindow fills them. One window per message (+1 for
 * the end event), so each line gets a score.
 */
export function sessionWindows(messageIds: ArrayLike<number>, size: number, opts: { end?: boolean } = {}): { windows: Int32Array; count: number } {
  if (!Number.isInteger(size) || size < 2) throw invalidParameterError('size', 'an integer >= 2', size);
  const end = opts.end ?? true;
  const count = messageIds.length + (end ? 1 : 0);
  const out = new Int32Array(count * size);
  const win = new Int32Array(size);
  forEachWindow(messageIds, size, win, end, (t) => out.set(win, t * size));
  return { windows: out, count };
}
