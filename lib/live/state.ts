/**
 * Checkpoints of a live monitor, so that a restart (after SIGTERM, a crash or SIGKILL) skips no line and raises
 * no alert twice.
 *
 * Two files:
 * - `STATE` — the checkpoint, JSON, replaced atomically (temp file, fsync, rename): the read cursor after the
 *   last line whose events were fully handled, the monitor's line counter, the scorer's state (open sessions,
 *   learned counts), the threshold's state, and the alerts the webhook has not delivered yet.
 * - `STATE.journal` — NDJSON appended synchronously between checkpoints: every alert raised (`{"a": alert}`)
 *   and every webhook delivery (`{"d": id}`), each tagged with the checkpoint generation it follows. It is
 *   emptied after each checkpoint.
 * The NDJSON alert file, when there is one, is a journal too: the checkpoint records its size, so alerts past
 * that size were raised after the checkpoint.
 *
 * After a crash the monitor restores the checkpoint and re-reads the lines after its cursor; scoring is
 * deterministic, so it raises the same alerts again. Those already raised after the checkpoint (same id) are
 * not printed or written again; those the webhook had not delivered are queued for it again. What remains are
 * windows of microseconds between two synchronous steps: a SIGKILL between the alert file's write and
 * stdout's leaves that alert unprinted on stdout (it is in the file and reaches the webhook); a SIGKILL
 * between a webhook's 2xx and its journal entry makes that alert be POSTed again, with the same id.
 *
 * One monitor per state file: `STATE.lock`, next to the state file's real path (a symlink to it is resolved,
 * so a second monitor reaching it through a link is refused), names its holder by pid, process start time
 * (field 22 of /proc/PID/stat), boot id and host name. A lock whose holder is gone is taken over; a pid reused
 * by an unrelated process after a SIGKILL does not block a restart, because that process started at another
 * time. Node has no flock(2) in core; the npm packages offering it are native addons (built at install, which
 * this package's install does not rely on), and the mkdir/mtime locks refuse a restart until their staleness
 * period has passed after a SIGKILL. Limits: the start-time check needs /proc (elsewhere a live pid is taken
 * as the holder), and monitors in different PID namespaces (two containers sharing a state volume) cannot see
 * each other's processes, so the lock does not keep them apart.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeepSentryError } from '../errors';
import type { FileCursor } from './tail';
import type { ThresholdSnapshot } from './thresholds';
import type { Alert } from './types';

export const CHECKPOINT_VERSION = 1;

/** The content of a state file. */
export interface Checkpoint {
  version: number;
  /** When it was written (ISO 8601; informational). */
  savedAt: string;
  /** The scorer's name: a state from another scorer is refused. */
  scorer: string;
  /** Where reading resumes (file sources only). */
  cursor: FileCursor | null;
  /** The `seq` of the last handled line. */
  seq: number;
  /** Checkpoint generation: journal entries carry the generation they follow, so a journal left over from
   * before this checkpoint (a kill between the rename and the journal's truncation) is not mistaken for news. */
  gen: number;
  scorerState: unknown;
  threshold: ThresholdSnapshot;
  /** Alerts the webhook had not delivered. */
  webhookPending: Alert[];
  /** The NDJSON alert file and its size at checkpoint time: alerts after that byte were raised after it. */
  alertFile?: { path: string; size: number };
}

/** What the journal says happened after a checkpoint. */
export interface JournalReplay {
  /** Ids of alerts already raised after the checkpoint: not to be emitted again. */
  raised: Set<string>;
  /** Those alerts, in order (the webhook re-queues the undelivered ones). */
  alerts: Alert[];
  /** Ids the webhook delivered. */
  delivered: Set<string>;
}

export class StateStore {
  readonly path: string;
  readonly journalPath: string;
  private journalFd: number | null = null;
  /** Generation of the last checkpoint loaded or saved. */
  gen = 0;

  constructor(file: string) {
    this.path = resolveStatePath(file);
    this.journalPath = this.path + '.journal';
  }

  private lockHeld = false;

  /**
   * Takes `STATE.lock` (see the file comment): two monitors on one state file would each replay the other's
   * lines and alert twice. A lock whose holder no longer runs (a SIGKILL, a reboot) is taken over.
   */
  lock(): void {
    const lockPath = this.path + '.lock';
    const me: LockOwner = { pid: process.pid, start: procStart(process.pid), boot: bootId(), host: os.hostname() };
    for (let attempt = 0; attempt < 3; attempt++) {
      // Written whole to a temporary file, then linked in place: link() fails if the lock exists, and a reader
      // never sees a half-written lock.
      const tmp = `${lockPath}.tmp-${process.pid}-${attempt}`;
      try {
        fs.writeFileSync(tmp, JSON.stringify(me));
        fs.linkSync(tmp, lockPath);
        this.lockHeld = true;
        HELD.add(lockPath);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new DeepSentryError('DS_IO', `cannot create ${lockPath}: ${(err as Error).message}`, { cause: err });
      } finally {
        fs.rmSync(tmp, { force: true });
      }
      let text: string;
      let written: number;
      try {
        text = fs.readFileSync(lockPath, 'utf8');
        written = fs.statSync(lockPath).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      const holder = parseOwner(text);
      if (holder && holds(holder, written, lockPath)) {
        const where = holder.host && holder.host !== me.host ? ` on host ${holder.host}` : '';
        throw new DeepSentryError('DS_IO', `the state file ${this.path} is in use by process ${holder.pid}${where} (${lockPath}): one monitor per state file; if that monitor is gone, delete the lock file`);
      }
      // Stale. Removed only if it is still the lock judged stale (another starting monitor may have replaced it).
      try {
        if (fs.readFileSync(lockPath, 'utf8') === text) fs.rmSync(lockPath, { force: true });
      } catch {
        /* gone already */
      }
    }
    throw new DeepSentryError('DS_IO', `cannot take ${lockPath}: another monitor keeps creating it`);
  }

  /** The checkpoint, or null when there is none yet. A corrupt file is an error naming it (never ignored: that would re-alert everything). */
  load(): Checkpoint | null {
    let text: string;
    try {
      text = fs.readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new DeepSentryError('DS_IO', `cannot read the state file ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    let c: Checkpoint;
    try {
      c = JSON.parse(text) as Checkpoint;
    } catch (err) {
      throw new DeepSentryError('DS_PARSE', `the state file ${this.path} is not valid JSON (${(err as Error).message}): delete it to start over`);
    }
    if (typeof c !== 'object' || c === null || c.version !== CHECKPOINT_VERSION || typeof c.seq !== 'number' || !Array.isArray(c.webhookPending)) {
      throw new DeepSentryError('DS_PARSE', `the state file ${this.path} is not a DeepSentry checkpoint of version ${CHECKPOINT_VERSION}: delete it to start over`);
    }
    if (!Number.isInteger(c.gen)) throw new DeepSentryError('DS_PARSE', `the state file ${this.path} has no generation number: delete it to start over`);
    this.gen = c.gen;
    return c;
  }

  /**
   * What happened after checkpoint `c`: the journal, plus the alert file's tail past the checkpointed size (the
   * alert file is written before the journal, so it alone knows of an alert a kill cut off between the two).
   * Lines cut by the kill are ignored.
   */
  replayJournal(c: Checkpoint): JournalReplay {
    const r: JournalReplay = { raised: new Set(), alerts: [], delivered: new Set() };
    let text = '';
    if (c.alertFile) {
      try {
        const fd = fs.openSync(c.alertFile.path, 'r');
        try {
          const size = fs.fstatSync(fd).size;
          if (size > c.alertFile.size) {
            const b = Buffer.alloc(size - c.alertFile.size);
            fs.readSync(fd, b, 0, b.length, c.alertFile.size);
            text += b.toString('utf8').split('\n').map((l) => (l === '' ? '' : `{"g":${c.gen},"a":${l}}`)).join('\n') + '\n';
          }
        } finally {
          fs.closeSync(fd);
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DeepSentryError('DS_IO', `cannot read the alert file ${c.alertFile.path}: ${(err as Error).message}`);
      }
    }
    try {
      text += fs.readFileSync(this.journalPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DeepSentryError('DS_IO', `cannot read ${this.journalPath}: ${(err as Error).message}`);
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let e: { g?: number; a?: Alert; d?: string };
      try {
        e = JSON.parse(line);
      } catch {
        continue; // a write cut by the kill
      }
      if (e.g !== c.gen) continue;
      if (e.a && typeof e.a.id === 'string' && !r.raised.has(e.a.id)) {
        r.raised.add(e.a.id);
        r.alerts.push(e.a);
      }
      if (typeof e.d === 'string') r.delivered.add(e.d);
    }
    return r;
  }

  /** Appends to the journal synchronously (survives SIGKILL of this process once it returns). */
  journal(entries: ({ a: Alert } | { d: string })[]): void {
    if (entries.length === 0) return;
    if (this.journalFd === null) this.journalFd = fs.openSync(this.journalPath, 'a');
    fs.writeSync(this.journalFd, entries.map((e) => JSON.stringify({ g: this.gen, ...e })).join('\n') + '\n');
  }

  /** Writes a checkpoint atomically, then empties the journal (everything in it is now covered). */
  save(c: Omit<Checkpoint, 'version' | 'savedAt' | 'gen'>): void {
    const full: Checkpoint = { version: CHECKPOINT_VERSION, savedAt: new Date().toISOString(), gen: this.gen + 1, ...c };
    const tmp = `${this.path}.tmp-${process.pid}`;
    try {
      const fd = fs.openSync(tmp, 'w');
      try {
        fs.writeSync(fd, JSON.stringify(full));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.path);
      this.gen = full.gen;
    } catch (err) {
      throw new DeepSentryError('DS_IO', `cannot write the state file ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    if (this.journalFd !== null) fs.ftruncateSync(this.journalFd, 0);
    else if (fs.existsSync(this.journalPath)) fs.truncateSync(this.journalPath, 0);
  }

  close(): void {
    if (this.journalFd !== null) fs.closeSync(this.journalFd);
    this.journalFd = null;
    if (this.lockHeld) {
      fs.rmSync(this.path + '.lock', { force: true });
      HELD.delete(this.path + '.lock');
    }
    this.lockHeld = false;
  }
}

/** Lock files this process holds. */
const HELD = new Set<string>();

/** Who holds a lock (see the file comment). `start` and `boot` are absent where there is no /proc. */
interface LockOwner {
  pid: number;
  start?: number;
  boot?: string;
  host?: string;
}

/**
 * The state file's real path: symlinks to it (even a dangling one, the file not existing yet) and in its
 * directory are resolved, so that every monitor names one lock and the atomic rename replaces the real file,
 * never the link.
 */
function resolveStatePath(file: string): string {
  let p = path.resolve(file);
  for (let hops = 0; hops < 40; hops++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      break; // does not exist (yet)
    }
    if (!st.isSymbolicLink()) break;
    p = path.resolve(path.dirname(p), fs.readlinkSync(p));
  }
  let dir: string;
  try {
    dir = fs.realpathSync(path.dirname(p));
  } catch (err) {
    throw new DeepSentryError('DS_IO', `the directory of the state file ${path.resolve(file)} does not exist (${(err as Error).message})`, { cause: err });
  }
  return path.join(dir, path.basename(p));
}

/** A lock file's content: the JSON owner, or a bare pid (written by versions before the owner was). */
function parseOwner(text: string): LockOwner | null {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { pid: Number(t) };
  try {
    const o = JSON.parse(t) as LockOwner;
    return Number.isInteger(o.pid) && o.pid > 0 ? o : null;
  } catch {
    return null; // unreadable: nobody can prove to hold it
  }
}

/** Whether the lock's holder still runs. `written`: the lock file's mtime (ms). */
function holds(o: LockOwner, written: number, lockPath: string): boolean {
  const boot = bootId();
  // Another boot: on this host it rebooted (every process is gone); another host may be alive, keep off.
  if (o.boot && boot && o.boot !== boot) return o.host !== undefined && o.host !== os.hostname();
  if (o.pid === process.pid && (o.start === undefined || o.start === procStart(process.pid))) {
    // This very process: another StateStore of ours holds it (a previous incarnation with the same pid, such
    // as pid 1 in a container, started at another time).
    return o.start !== undefined || HELD.has(lockPath);
  }
  const start = procStart(o.pid);
  if (start !== undefined) {
    if (o.start !== undefined) return start === o.start;
    // A bare pid: a process that started after the lock was written cannot be its writer (pid reuse).
    const bt = bootTimeMs();
    return bt === undefined || bt + (start * 1000) / CLOCK_TICKS <= written + 1000;
  }
  if (fs.existsSync('/proc/self/stat')) return false; // /proc works and has no such process
  try {
    process.kill(o.pid, 0); // no /proc: signal 0 tells whether the pid exists
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** /proc's clock ticks per second (USER_HZ, 100 on Linux's ABI). */
const CLOCK_TICKS = 100;

/** A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or undefined. */
function procStart(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: count after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function bootId(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function bootTimeMs(): number | undefined {
  try {
    const m = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'));
    return m ? Number(m[1]) * 1000 : undefined;
  } catch {
    return undefined;
  }
}
