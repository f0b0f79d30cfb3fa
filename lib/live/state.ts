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
 */
import * as fs from 'node:fs';
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
    this.path = path.resolve(file);
    this.journalPath = this.path + '.journal';
    const dir = path.dirname(this.path);
    if (!fs.existsSync(dir)) throw new DeepSentryError('DS_IO', `the directory of the state file ${this.path} does not exist`);
  }

  private lockHeld = false;

  /**
   * Takes `STATE.lock` (holding this process's pid): two monitors on one state file would each replay the
   * other's lines and alert twice. A lock left by a process that no longer exists (a SIGKILL) is taken over.
   */
  lock(): void {
    const lockPath = this.path + '.lock';
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = fs.openSync(lockPath, 'wx');
        fs.writeSync(fd, String(process.pid));
        fs.closeSync(fd);
        this.lockHeld = true;
        HELD.add(lockPath);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new DeepSentryError('DS_IO', `cannot create ${lockPath}: ${(err as Error).message}`, { cause: err });
      }
      const pid = Number(fs.readFileSync(lockPath, 'utf8').trim());
      // Our own pid is ours only if this process took the lock: in a container the monitor is often pid 1 on
      // every start, so a lock with our pid may well be a previous incarnation's.
      const ours = pid === process.pid ? HELD.has(lockPath) : alive(pid);
      if (Number.isInteger(pid) && pid > 0 && ours) {
        throw new DeepSentryError('DS_IO', `the state file ${this.path} is in use by process ${pid} (${lockPath}): one monitor per state file`);
      }
      fs.rmSync(lockPath, { force: true }); // stale: its process is gone
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

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
