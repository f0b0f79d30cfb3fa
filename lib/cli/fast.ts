/**
 * The CLI's arguments without loading yargs, for the plain case. yargs, its parser and its text layout load in
 * ~60 ms, a tenth of `deepsentry score` on a 100k-line log; most command lines need none of what they do beyond
 * reading `--flag value`. So the command's own yargs builder (lib/cli/commands/*.ts, and withGlobalOptions) is
 * run against a recorder that keeps what it declares (options, positionals, checks), and the arguments are read
 * with node:util's parseArgs against that: the same declarations, so nothing is declared twice.
 *
 * Only the plain case is taken: the command's declarations are all understood here (a builder calling anything
 * else — conflicts, arrays, variadic positionals — leaves its command to yargs), and the arguments are
 * unambiguous: every option known and given once, values of the declared choices, numbers that are numbers,
 * required options and positionals present, the checks passing. Anything else (--help, --version, a usage
 * error, any doubt) returns null and yargs parses the arguments as always, with its messages. What is returned
 * is the argv yargs would give (test/unit/cli-fast.test.ts holds both to the same command lines).
 */
import { parseArgs } from 'node:util';
import type { ArgumentsCamelCase, CommandModule } from 'yargs';

/** What an option or positional declares that parsing reads. */
interface Declared {
  type?: 'string' | 'boolean' | 'number';
  choices?: readonly unknown[];
  default?: unknown;
  alias?: string;
  demandOption?: boolean | string;
  coerce?: (v: unknown) => unknown;
  [other: string]: unknown;
}

/** The declaration keys understood here (display-only ones included); any other leaves the command to yargs. */
const KNOWN_KEYS = new Set(['type', 'choices', 'default', 'alias', 'demandOption', 'coerce', 'describe', 'global', 'hidden']);

/** What a builder declared. */
interface Declarations {
  options: Map<string, Declared>;
  positionals: Map<string, Declared>;
  checks: ((argv: Record<string, unknown>) => unknown)[];
  /** the builder called something not understood here */
  unsupported: boolean;
}

/** Builder calls that only shape the help text. */
const DISPLAY_ONLY = new Set(['group', 'example', 'epilog', 'epilogue', 'usage', 'wrap', 'scriptName', 'strict', 'help', 'recommendCommands', 'demandCommand']);

/** A stand-in for yargs' Argv that records the declarations (a Proxy: any other method marks them unsupported). */
function recorder(d: Declarations): unknown {
  const self: unknown = new Proxy(
    {},
    {
      get(_t, prop) {
        if (prop === 'option' || prop === 'positional') {
          return (name: string, spec: Declared = {}) => {
            if (Object.keys(spec).some((k) => !KNOWN_KEYS.has(k)) || (spec.alias !== undefined && typeof spec.alias !== 'string')) d.unsupported = true;
            (prop === 'option' ? d.options : d.positionals).set(name, spec);
            return self;
          };
        }
        if (prop === 'check') {
          return (f: Declarations['checks'][number]) => {
            d.checks.push(f);
            return self;
          };
        }
        if (typeof prop === 'string' && DISPLAY_ONLY.has(prop)) return () => self;
        return () => {
          d.unsupported = true;
          return self;
        };
      },
    },
  );
  return self;
}

const camel = (s: string) => s.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/** Sets a key as yargs does: under its name, its camelCase form and its alias. */
function put(argv: Record<string, unknown>, name: string, spec: Declared, v: unknown): void {
  argv[name] = v;
  if (name.includes('-')) argv[camel(name)] = v;
  if (spec.alias !== undefined) argv[spec.alias] = v;
}

/** A value as its declaration wants it, or undefined when it is not one (a number that is not, a choice not offered). */
function typed(spec: Declared, raw: string | boolean): unknown {
  let v: unknown = raw;
  if (spec.type === 'number') {
    if (typeof raw !== 'string' || !/^-?\d+(\.\d+)?$/.test(raw)) return undefined;
    v = Number(raw);
  }
  if (spec.choices !== undefined && !spec.choices.includes(v)) return undefined;
  return v;
}

/** A value typed (see typed) and coerced as declared, or undefined when it is not acceptable (coerce threw). */
function accepted(spec: Declared, raw: string | boolean): unknown {
  const v = typed(spec, raw);
  if (v === undefined || spec.coerce === undefined) return v;
  try {
    return spec.coerce(v);
  } catch {
    return undefined;
  }
}

/**
 * The argv yargs would hand `commands`' handler for `args`, with the handler, or null when yargs must parse them
 * (see the header). `global` declares the options of every command (withGlobalOptions).
 */
export function fastParse(
  args: readonly string[],
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  commands: readonly CommandModule<any, any>[],
  global: (y: never) => unknown,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): { argv: ArgumentsCamelCase; command: CommandModule<any, any> } | null {
  const [name, ...rest] = args;
  if (name === undefined || name.startsWith('-')) return null;
  const command = commands.find((c) => typeof c.command === 'string' && c.command.split(' ')[0] === name && c.aliases === undefined);
  if (command === undefined || typeof command.builder !== 'function' || typeof command.handler !== 'function') return null;
  // the positionals the command string names: <required> or [optional], none variadic
  const slots = (command.command as string).split(' ').slice(1);
  if (slots.some((s) => !/^(<[\w-]+>|\[[\w-]+\])$/.test(s))) return null;
  const d: Declarations = { options: new Map(), positionals: new Map(), checks: [], unsupported: false };
  const y = recorder(d);
  global(y as never);
  (command.builder as (y: unknown) => unknown)(y);
  if (d.unsupported) return null;
  // --help and --version are yargs' own; an option with a coerce and a default is coerced as yargs decides
  if (d.options.has('help') || d.options.has('version') || [...d.options.values()].some((o) => o.coerce !== undefined && o.default !== undefined)) return null;

  const config: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [opt, spec] of d.options) {
    config[opt] = { type: spec.type === 'boolean' ? 'boolean' : 'string', ...(spec.alias !== undefined && spec.alias.length === 1 ? { short: spec.alias } : {}) };
    if (spec.alias !== undefined && spec.alias.length > 1) return null;
  }
  // `--no-x` of a boolean option: x = false (parseArgs of this Node has no negation)
  const negated = new Set<string>();
  const tokens: string[] = [];
  for (const a of rest) {
    if (a === '--') return null;
    const m = /^--no-(.+)$/.exec(a);
    if (m && d.options.get(m[1])?.type === 'boolean') negated.add(m[1]);
    else if (a === '-' || !a.startsWith('-') || /^-[^-]/.test(a) || /^--[\w-]+(=.*)?$/.test(a)) tokens.push(a);
    else return null;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: tokens, options: config, strict: true, allowPositionals: true, tokens: true });
  } catch {
    return null;
  }
  // every option once (yargs makes an array of a repeated one); no value that looks like an option
  const seen = new Set<string>(negated);
  for (const t of parsed.tokens ?? []) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) return null;
    seen.add(t.name);
    if (typeof t.value === 'string' && t.value.startsWith('-') && t.inlineValue !== true) return null;
  }

  const argv: Record<string, unknown> = { _: [name] };
  for (const [opt, spec] of d.options) {
    const raw = negated.has(opt) ? false : (parsed.values as Record<string, string | boolean | undefined>)[opt];
    if (raw === undefined) {
      if (spec.demandOption) return null;
      if (spec.default !== undefined) put(argv, opt, spec, spec.default);
      continue;
    }
    const v = accepted(spec, raw);
    if (v === undefined) return null;
    put(argv, opt, spec, v);
  }
  argv.$0 = 'deepsentry';
  const given = parsed.positionals;
  if (given.length > slots.length) return null;
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i].slice(1, -1);
    const spec = d.positionals.get(slot) ?? {};
    const raw = given[i];
    if (raw === undefined) {
      if (slots[i].startsWith('<') || spec.demandOption) return null;
      continue;
    }
    // a positional that looks like a number is a number to yargs unless declared a string
    if (spec.type !== 'string' && raw.trim() !== '' && !Number.isNaN(Number(raw))) return null;
    const v = accepted(spec, raw);
    if (v === undefined) return null;
    put(argv, slot, spec, v);
  }
  for (const check of d.checks) {
    try {
      if (check(argv) !== true) return null;
    } catch {
      return null;
    }
  }
  return { argv: argv as ArgumentsCamelCase, command };
}
