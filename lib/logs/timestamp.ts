/**
 * Timestamp parsing into epoch milliseconds, one compiled parser per format. A string that does not parse
 * gives NaN (the caller reports it; nothing is ever replaced by the wall clock).
 */
import { DeepSentryError } from '../errors';

/**
 * How a timestamp is written:
 * - `iso8601`: `2026-11-22T01:02:03.456Z`, `2026-11-22 01:02:03,456+01:00`, date-only `2026-11-22`;
 *   without a zone the configured UTC offset applies.
 * - `epoch` / `epoch-s`: seconds since 1970 (fraction allowed); `epoch-ms`: milliseconds.
 * - `syslog`: RFC 3164's yearless `Nov 22 01:02:03` (the year comes from the config and rolls over when the
 *   month goes back, e.g. Dec → Jan).
 * - a pattern with the tokens YYYY YY MM MMM DD D HH H mm ss SSS (any number of fraction digits) and ddd (a
 *   weekday name, read and ignored); any other character is literal, e.g. HDFS `YYMMDD HHmmss`, Spark
 *   `YY/MM/DD HH:mm:ss`, Apache `ddd MMM DD HH:mm:ss YYYY`.
 */
export type TimestampFormat = 'iso8601' | 'epoch' | 'epoch-s' | 'epoch-ms' | 'syslog' | string;

/** Parses one timestamp string into epoch ms, or NaN. Stateful only for `syslog` (year rollover). */
export type TimestampParser = (s: string) => number;

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

function fracMs(f: string | undefined): number {
  if (!f) return 0;
  // Milliseconds from any number of fraction digits, truncated (not rounded) so ordering is kept.
  return Number((f + '00').slice(0, 3));
}

/** Checks ranges and builds the UTC epoch ms; NaN when a field is out of range (e.g. month 13, Feb 30). */
function utc(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number, offsetMin: number): number {
  if (mo < 0 || mo > 11 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return NaN;
  const t = Date.UTC(y, mo, d, h, mi, s, ms);
  // Feb 30 and the like (every month has days 1-28: those need no check, and no Date object)
  if (d > 28 && new Date(t).getUTCDate() !== d) return NaN;
  return t - offsetMin * 60_000;
}

function parseIso(s: string, offsetMin: number): number {
  const m = ISO_RE.exec(s);
  if (m === null) return NaN;
  let off = offsetMin;
  if (m[8] !== undefined) {
    if (m[8] === 'Z' || m[8] === 'z') off = 0;
    else {
      const z = m[8].replace(':', '');
      const sign = z[0] === '-' ? -1 : 1;
      off = sign * (Number(z.slice(1, 3)) * 60 + Number(z.slice(3, 5)));
    }
  }
  return utc(+m[1], +m[2] - 1, +m[3], m[4] ? +m[4] : 0, m[5] ? +m[5] : 0, m[6] ? +m[6] : 0, fracMs(m[7]), off);
}

const EPOCH_RE = /^-?\d+(?:\.\d+)?$/;

/**
 * Compiles a parser. `year` is the year for yearless formats; `utcOffsetMinutes` applies to zone-less times.
 * An invalid pattern is a DS_CONFIG error.
 */
export function compileTimestamp(format: TimestampFormat, opts: { year?: number; utcOffsetMinutes?: number } = {}): TimestampParser {
  const off = opts.utcOffsetMinutes ?? 0;
  switch (format) {
    case 'iso8601':
      return (s) => parseIso(s, off);
    case 'epoch':
    case 'epoch-s':
      return (s) => (EPOCH_RE.test(s) ? Math.round(Number(s) * 1000) : NaN);
    case 'epoch-ms':
      return (s) => (EPOCH_RE.test(s) ? Math.round(Number(s)) : NaN);
    case 'syslog': {
      let year = opts.year ?? 1970;
      let lastMonth = -1;
      const re = /^([A-Za-z]{3})\s+(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/;
      return (s) => {
        const m = re.exec(s);
        if (m === null) return NaN;
        const mo = MONTHS[m[1].toLowerCase()];
        if (mo === undefined) return NaN;
        // Year rollover: a month far earlier than the previous line's (Dec → Jan) starts the next year.
        if (lastMonth >= 0 && mo < lastMonth - 6) year++;
        lastMonth = mo;
        return utc(year, mo, +m[2], +m[3], +m[4], +m[5], fracMs(m[6]), off);
      };
    }
    default:
      return compilePattern(format, off);
  }
}

const TOKENS = ['YYYY', 'SSS', 'MMM', 'ddd', 'YY', 'MM', 'DD', 'HH', 'mm', 'ss', 'D', 'H'] as const;

function compilePattern(pattern: string, off: number): TimestampParser {
  if (typeof pattern !== 'string' || pattern === '') {
    throw new DeepSentryError('DS_CONFIG', `Expected a timestamp format (iso8601, epoch, epoch-ms, syslog or a pattern like "YYMMDD HHmmss") but received ${JSON.stringify(pattern)}`);
  }
  const order: string[] = [];
  let src = '^';
  let i = 0;
  while (i < pattern.length) {
    const tok = TOKENS.find((t) => pattern.startsWith(t, i));
    if (tok) {
      if (tok !== 'ddd') order.push(tok);
      src +=
        tok === 'ddd' ? '(?:[A-Za-z]{3})' : tok === 'YYYY' ? '(\\d{4})' : tok === 'SSS' ? '(\\d+)' : tok === 'MMM' ? '([A-Za-z]{3})' : tok === 'D' || tok === 'H' ? '(\\d{1,2})' : '(\\d{2})';
      i += tok.length;
    } else {
      const ch = pattern[i];
      src += ch === ' ' ? '\\s+' : ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
      i++;
    }
  }
  if (!order.some((t) => t === 'YYYY' || t === 'YY') || !order.some((t) => t === 'MM' || t === 'MMM')) {
    throw new DeepSentryError('DS_CONFIG', `Timestamp pattern ${JSON.stringify(pattern)} needs a year (YYYY or YY) and a month (MM or MMM)`);
  }
  const re = new RegExp(src + '$');
  // Consecutive log lines very often share their timestamp string: remember the last one.
  let lastS = '';
  let lastT = NaN;
  return (s) => {
    if (s === lastS) return lastT;
    const m = re.exec(s);
    let t = NaN;
    if (m !== null) {
      let y = 1970;
      let mo = 0;
      let d = 1;
      let h = 0;
      let mi = 0;
      let sec = 0;
      let ms = 0;
      for (let k = 0; k < order.length; k++) {
        const v = m[k + 1];
        switch (order[k]) {
          case 'YYYY':
            y = +v;
            break;
          case 'YY':
            y = 2000 + +v; // two-digit years are 2000-2099 (HDFS 08, Spark 17)
            break;
          case 'MM':
            mo = +v - 1;
            break;
          case 'MMM':
            mo = MONTHS[v.toLowerCase()] ?? -1;
            break;
          case 'DD':
          case 'D':
            d = +v;
            break;
          case 'HH':
          case 'H':
            h = +v;
            break;
          case 'mm':
            mi = +v;
            break;
          case 'ss':
            sec = +v;
            break;
          case 'SSS':
            ms = fracMs(v);
            break;
        }
      }
      t = utc(y, mo, d, h, mi, sec, ms, off);
    }
    lastS = s;
    lastT = t;
    return t;
  };
}
