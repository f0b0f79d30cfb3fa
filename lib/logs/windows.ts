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
 * All windows of `size` message ids of one session, flat: window t (0 ≤ t < count) is
 * `out.subarray(t*size, (t+1)*size)`, its LAST entry is the target (the t-th message, or END_MESSAGE for the
 * extra last window when `end` is true) and the entries before it are the preceding messages, padded at the
 * start with PAD_MESSAGE. One window per message (+1 for the end event), so each line gets a score.
 */
export function sessionWindows(messageIds: ArrayLike<number>, size: number, opts: { end?: boolean } = {}): { windows: Int32Array; count: number } {
  if (!Number.isInteger(size) || size < 2) throw invalidParameterError('size', 'an integer >= 2', size);
  const end = opts.end ?? true;
  const n = messageIds.length;
  const count = n + (end ? 1 : 0);
  const out = new Int32Array(count * size); // zero-filled = PAD_MESSAGE
  for (let t = 0; t < count; t++) {
    const base = t * size;
    // Entry j of window t is the message at t - (size-1) + j.
    for (let j = 0; j < size; j++) {
      const i = t - (size - 1) + j;
      if (i >= 0) out[base + j] = i < n ? messageIds[i] : END_MESSAGE;
    }
  }
  return { windows: out, count };
}
