/**
 * Library errors name API options (lib/ is a library first); the CLI names its flags. These are the phrases of
 * library messages that name an option the CLI sets from a flag, and the flag's wording. main.ts rewrites a
 * DeepSentryError's message with them before printing it, and the CLI's commands their warnings.
 */

/** A duration in ms as --session-window and --idle-timeout take it: `10s`, or `1500ms` when not whole seconds. */
const durationFlag = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

/** The flags that set the keys of logs.session, and how each writes a value. */
const SESSION_FLAGS: Record<string, (v: string) => string> = {
  mode: (v) => `--session-mode ${v}`,
  keyPattern: (v) => `--session-key ${v}`,
  field: (v) => `--session-field ${v}`,
  windowMs: (v) => `--session-window ${durationFlag(Number(v))}`,
  windowLines: (v) => `--session-lines ${v}`,
};

/** `logs.session { mode: "time", windowMs: 10000 }` as its flags; unchanged when a key has no flag. */
function sessionSettings(whole: string, body: string): string {
  const flags: string[] = [];
  for (const kv of body.split(',')) {
    const m = /^\s*(\w+):\s*(?:"([^"]*)"|(\S+?))\s*$/.exec(kv);
    const flag = m ? SESSION_FLAGS[m[1]] : undefined;
    if (!m || !flag) return whole;
    flags.push(flag(m[2] ?? m[3]));
  }
  return flags.join(' ');
}

const API_TO_FLAG: readonly [RegExp, string | ((whole: string, ...groups: string[]) => string)][] = [
  [/\bset acceptTruncated\b/g, 'pass --accept-truncated'],
  [/\bnormalLabels\b/g, '--normal-labels'],
  [/\bfeedback file\b/g, '--normal'],
  [/\bthe log option\b/g, '--log'],
  [/\bmore epochs, weight or seen \(feedback options\)/g, 'more --epochs, --weight or --seen'],
  [/\bpass modelDir\b/g, 'pass --model DIR'],
  [/\buse scorer 'novelty'/g, '--scorer novelty'],
  // output locations (lib/outdir.ts)
  [/\bforce: true\b/g, '--force'],
  // score's second pass without the messages common and new (lib/pipeline/score.ts)
  [/\bset setAsideNew false\b/g, 'pass --no-set-aside-new'],
  [/\bsetAsideNew\b/g, '--set-aside-new'],
  [/\bchoose another outDir\b/g, 'choose another --out'],
  // backend and precision (lib/backend/select.ts)
  [/\bbackend: '(\w+)' or '(\w+)'/g, '--backend $1 or $2'],
  [/\bbackend: '(\w+)'/g, '--backend $1'],
  [/\bprecision: '(\w+)'/g, '--precision $1'],
  // a NATS deployment (lib/scale/topology.ts) and the live server's address
  [/\bfor (stream|nats|partitions) but received\b/g, 'for --$1 but received'],
  [/\buse another stream name, or omit partitions\b/g, 'use another --stream name, or omit --partitions'],
  [/\bfor listen address but received\b/g, 'for --listen but received'],
  // live thresholds (lib/live/thresholds.ts: the monitor's `threshold` options)
  [/\bthreshold\.mode '(\w+)' or '(\w+)'/g, '--threshold-mode $1 or $2'],
  [/\bthreshold\.mode\b/g, '--threshold-mode'],
  [/\bthreshold\.floor\b/g, '--threshold'],
  [/\bthreshold\.window\b/g, '--window'],
  // per-line labels (lib/eval/labels.ts)
  [/\blabelField\b/g, '--label-field'],
  // configuration keys with what to give them (a config file's own errors say `for logs.… but received`)
  [/\bset logs\.format\b/g, 'pass --format'],
  [/\bcheck that logs\.format\b/g, 'check that --format'],
  [/\bin the format "/g, 'in --format "'],
  [/\blogs\.format "([^"]*)"/g, '--format $1'],
  [/\bset logs\.session\.keyPattern to a regex\b/g, 'pass --session-key REGEX'],
  [/\bset logs\.session\.field to the field's name\b/g, 'pass --session-field NAME'],
  [/\blogs\.session \{([^}]*)\}/g, sessionSettings],
  [/\blogs\.session\.mode "(\w+)" or "(\w+)"/g, '--session-mode $1 or $2'],
  [/\blogs\.session\.mode "([^"]*)"/g, '--session-mode $1'],
  [/\blogs\.session\.windowMs, now (\d+) ms\b/g, (_w, ms) => `--session-window, now ${Number(ms) / 1000} s`],
  [/\blogs\.session\.windowLines, now\b/g, '--session-lines, now'],
];

/** A library error or warning as the CLI says it: API options named by their flags. */
export function flagWording(message: string): string {
  let m = message;
  for (const [re, flag] of API_TO_FLAG) m = typeof flag === 'string' ? m.replace(re, flag) : m.replace(re, flag);
  return m;
}
