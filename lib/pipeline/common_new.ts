/**
 * Messages common and new: a message the model never saw that a large share of a log's sessions hold is a change
 * of the log (a new version writing a new message), not an anomaly. `deepsentry score` names them and sets their
 * lines aside (score.ts, ScoreLogOptions.setAsideNew); `deepsentry feedback` reads the log the same way
 * (feedback.ts), so that what score left out is not learnt either.
 */

/**
 * The share of the sessions above which a message never seen is common: anomalies are rare (about 3 % of HDFS
 * blocks, and each kind far rarer).
 */
export const COMMON_NEW_SHARE = 0.05;

/**
 * Messages the model does not know that at least COMMON_NEW_SHARE of `sessions` (≥ 20) held, by the keys
 * holding each: most common first (then by text).
 */
export function commonNew(newIn: ReadonlyMap<string, ReadonlySet<string>>, sessions: number): Array<{ message: string; sessions: number }> {
  return [...newIn]
    .map(([message, keys]) => ({ message, sessions: keys.size }))
    .filter((c) => sessions >= 20 && c.sessions >= COMMON_NEW_SHARE * sessions)
    .sort((a, b) => b.sessions - a.sessions || (a.message < b.message ? -1 : 1));
}
