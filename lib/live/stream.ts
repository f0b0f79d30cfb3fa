/**
 * A Node stream view of a LiveMonitor: write raw log bytes (e.g. `fs.createReadStream(file).pipe(s)`),
 * read judged events (object mode). Writes wait for room in the monitor's queue, so a fast producer is
 * slowed down rather than buffered. At the end of the input the queued lines are scored, the open sessions
 * are ended and their end events come out too, then the readable side ends. (An async iterator needs no
 * helper: `for await (const [alert] of events.on(monitor, 'anomaly'))`.)
 */
import { Transform } from 'node:stream';
import { LineSplitter } from '../logs/lines';
import type { LiveMonitor } from './monitor';
import type { JudgedEvent } from './types';

/** Options of monitorStream. */
export interface MonitorStreamOptions {
  /** Only anomalous events come out (default false: every event). */
  anomaliesOnly?: boolean;
  /** End the open sessions when the input ends (default true). */
  flushSessions?: boolean;
}

export function monitorStream(monitor: LiveMonitor, opts: MonitorStreamOptions = {}): Transform {
  const splitter = new LineSplitter();
  const onEvent = (e: JudgedEvent) => {
    if (!opts.anomaliesOnly || e.anomaly) t.push(e);
  };
  const t: Transform = new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer | string, _enc, cb) {
      const lines = splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      if (lines.length === 0) return cb();
      monitor.push(lines).then(() => cb(), cb);
    },
    flush(cb) {
      const rest = splitter.finish();
      (async () => {
        if (rest.length > 0) await monitor.push(rest);
        await monitor.idle();
        if (opts.flushSessions !== false) await monitor.flushSessions();
      })().then(
        () => {
          monitor.off('event', onEvent);
          cb();
        },
        (err: Error) => {
          monitor.off('event', onEvent);
          cb(err);
        },
      );
    },
  });
  monitor.on('event', onEvent);
  return t;
}
