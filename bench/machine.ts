/** What the benchmark records about the machine and the software it ran on (stored with every result). */
import * as fs from 'fs';
import * as os from 'os';
import type { NativeCapabilities } from '../lib/backend/binding';

export interface MachineInfo {
  cpuModel: string;
  /** the CPU's vector extensions (from /proc/cpuinfo on Linux; empty elsewhere) */
  cpuSimd: string[];
  /** logical cores the OS reports */
  cores: number;
  memoryGiB: number;
  platform: string;
  nodeVersion: string;
  /** the native addon, or why it is missing */
  native: { loaded: true; path: string | null; simd: string; simdSupported: string[]; threads: number; cuda: string } | { loaded: false; reason: string };
  /** DEEPSENTRY_THREADS as set for this run (the addon sizes its pool from it; default: the number of cores) */
  deepsentryThreadsEnv: string | null;
  /** 1-minute load average at the start and the end: the machine is shared, > cores means noisy numbers */
  loadAverage: { start: number; end?: number };
}

const SIMD_FLAGS = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_tile', 'amx_bf16'];

function cpuSimdFlags(): string[] {
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const line = info.split('\n').find((l) => l.startsWith('flags'));
    const flags = new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
    return SIMD_FLAGS.filter((f) => flags.has(f));
  } catch {
    return []; // not Linux: the native SIMD level below still says what the kernels use
  }
}

export function machineInfo(
  native: { capabilities: NativeCapabilities; path: string | null } | { reason: string },
): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuSimd: cpuSimdFlags(),
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    nodeVersion: process.version,
    native:
      'capabilities' in native
        ? {
            loaded: true,
            path: native.path,
            simd: native.capabilities.simd,
            simdSupported: native.capabilities.simdSupported,
            threads: native.capabilities.threads,
            cuda: native.capabilities.cudaCompiled
              ? `compiled, ${native.capabilities.cudaDeviceCount} device(s)${native.capabilities.cudaError ? ` (${native.capabilities.cudaError})` : ''}`
              : 'not compiled',
          }
        : { loaded: false, reason: native.reason },
    deepsentryThreadsEnv: process.env.DEEPSENTRY_THREADS ?? null,
    loadAverage: { start: os.loadavg()[0] },
  };
}
