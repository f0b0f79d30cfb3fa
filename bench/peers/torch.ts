/**
 * The PyTorch peer: bench/peers/torch_peer.py in a python3 child process that has torch, driven line by line
 * (JSON requests and answers, the protocol in that file's docstring). The parameters and batches are the
 * harness' seeded ones, handed over as raw float32/int32 files in a temporary folder, so the agreement check
 * compares torch's outputs and gradients with native's; the timing loop runs inside Python (no pipe round
 * trip per call) and returns its samples.
 *
 * The interpreter: $DEEPSENTRY_PYTHON when set, else the first of `python3` and `/usr/bin/python3` that imports
 * torch (Debian's python3-torch is installed for /usr/bin/python3 only, which another python3 on PATH hides).
 * When none does, the peer is skipped with the reason (`findTorchPython`).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { DeepSentryError } from '../../lib/errors';
import type { Timing, TimingBudget } from '../timing';
import { median } from '../timing';
import {
  decoderInputs,
  w1ParamList,
  w2ParamList,
  type NamedArrays,
  type W1Batch,
  type W1Params,
  type W1Shape,
  type W2Batch,
  type W2Params,
  type W2Shape,
} from '../workloads';

export const TORCH_PEER_SCRIPT = path.join(__dirname, 'torch_peer.py');

/** The python3 candidates, in order, for an environment. */
export function pythonCandidates(env: NodeJS.ProcessEnv): string[] {
  return env.DEEPSENTRY_PYTHON ? [env.DEEPSENTRY_PYTHON] : ['python3', '/usr/bin/python3'];
}

/**
 * The first interpreter that imports torch, with its version; or why none does. `probe` runs one candidate
 * and returns torch's version or the error text (the default spawns it).
 */
export function findTorchPython(
  env: NodeJS.ProcessEnv,
  probe: (python: string) => { version: string } | { error: string } = probeTorch,
): { python: string; version: string } | { skip: string } {
  const failures: string[] = [];
  for (const python of pythonCandidates(env)) {
    const r = probe(python);
    if ('version' in r) return { python, version: r.version };
    failures.push(`${python}: ${r.error}`);
  }
  return { skip: `no python3 with torch (${failures.join('; ')}); install PyTorch (e.g. apt-get install python3-torch) or set DEEPSENTRY_PYTHON to an interpreter that has it` };
}

function probeTorch(python: string): { version: string } | { error: string } {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return { error: (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : r.error.message };
  if (r.status !== 0) {
    const last = r.stderr.trim().split('\n').pop() ?? '';
    return { error: last || `exit code ${r.status}` };
  }
  return { version: r.stdout.trim() };
}

/**
 * The child's environment: OMP_WAIT_POLICY=PASSIVE unless set. PyTorch's OpenMP threads otherwise spin while
 * they wait for each other; on a machine with other work on its cores a spinning thread holds a core the
 * thread it waits for needs (measured at load ~10 on 2 cores: W1 forward at 2 threads 1.7 s per batch spinning,
 * 30 ms passive; 92 ms on 1 thread).
 */
export function torchEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, OMP_WAIT_POLICY: env.OMP_WAIT_POLICY ?? 'PASSIVE' };
}

function writeArray(file: string, a: Float32Array | Int32Array): void {
  fs.writeFileSync(file, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

function readFloats(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** One python3 process running torch_peer.py; requests are answered in order. */
export class TorchPeer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private readonly dir: string;
  private stderr = '';

  private constructor(python: string) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepsentry-bench-torch-'));
    this.child = spawn(python, [TORCH_PEER_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], env: torchEnv(process.env) });
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  /** Starts the peer with `threads` intra-op threads; returns it with torch's version. */
  static async start(python: string, threads: number): Promise<{ peer: TorchPeer; torch: string; threads: number }> {
    const peer = new TorchPeer(python);
    try {
      const r = (await peer.request({ op: 'init', threads })) as { torch: string; threads: number };
      return { peer, torch: r.torch, threads: r.threads };
    } catch (err) {
      await peer.close();
      throw err;
    }
  }

  private async request(msg: object): Promise<Record<string, unknown>> {
    this.child.stdin.write(JSON.stringify(msg) + '\n');
    const next = await this.lines.next();
    if (next.done) throw new DeepSentryError('DS_UNSUPPORTED', `the torch peer (${TORCH_PEER_SCRIPT}) exited: ${this.stderr.trim() || 'no output'}`);
    const ans = JSON.parse(next.value) as Record<string, unknown>;
    if (typeof ans.error === 'string') throw new DeepSentryError('DS_UNSUPPORTED', `the torch peer failed on ${JSON.stringify(msg).slice(0, 80)}: ${ans.error}`);
    return ans;
  }

  private async load(model: 'w1' | 'l1' | 'w2', shape: W1Shape | W2Shape, params: NamedArrays, batch: Record<string, Float32Array | Int32Array>): Promise<void> {
    for (const [name, a] of params) writeArray(path.join(this.dir, `${model}.${name}.f32`), a);
    for (const [name, a] of Object.entries(batch)) writeArray(path.join(this.dir, `${model}.${name}`), a);
    await this.request({ op: 'load', model, shape, dir: this.dir });
  }

  /** W1 (model 'w1') or L1 (model 'l1', a batch of 1) from the harness' parameters and batch. */
  loadW1(model: 'w1' | 'l1', s: W1Shape, p: W1Params, b: W1Batch): Promise<void> {
    return this.load(model, s, w1ParamList(p), { 'x.f32': b.x, 'target.f32': b.target });
  }

  loadW2(s: W2Shape, p: W2Params, b: W2Batch): Promise<void> {
    return this.load('w2', s, w2ParamList(p), { 'tokens.i32': b.tokens, 'decoder.i32': decoderInputs(b.tokens, s.batch, s.steps) });
  }

  /** A forward case's output (w1-forward, l1: predictions; w2-encode: the encoder's final h). */
  async output(c: 'w1-forward' | 'l1' | 'w2-encode'): Promise<Float32Array> {
    const r = await this.request({ op: 'check', case: c, dir: this.dir });
    return readFloats(r.output as string);
  }

  /** A training case's loss and gradients (Keras layouts, the harness' parameter names), without an update. */
  async gradients(c: 'w1-train' | 'w2-train'): Promise<{ loss: number; grads: NamedArrays }> {
    const r = await this.request({ op: 'check', case: c, dir: this.dir });
    const grads = (r.grads as Array<[string, string]>).map(([name, file]): [string, Float32Array] => [name, readFloats(file)]);
    return { loss: r.loss as number, grads };
  }

  /** Times a case inside Python: samples are seconds per call, each the mean of one cycle of calls. */
  async time(c: string, budget: TimingBudget): Promise<Timing> {
    const r = (await this.request({ op: 'time', case: c, minSamples: budget.minSamples, maxTime: budget.maxTime })) as {
      samples: number[];
      callsPerSample: number;
      calls: number;
    };
    return { median: median(r.samples), samples: r.samples, rme: relativeMarginOfError(r.samples), callsPerSample: r.callsPerSample, calls: r.calls };
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.stdin.end(JSON.stringify({ op: 'quit' }) + '\n');
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** 95% relative margin of error of the mean in percent, as benchmark.js reports it (normal approximation). */
function relativeMarginOfError(samples: number[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  const variance = samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return ((1.96 * Math.sqrt(variance / n)) / mean) * 100;
}
