/**
 * `deepsentry info`: the native addon's status — where it was loaded from, its version, the SIMD level in use
 * and those supported, kernel threads, whether CUDA was compiled in and the device count or the CUDA error,
 * the CUDA runtime/driver versions. When the addon cannot load: why, how to fix it, and what still works.
 * The precision tiers: which one runs (--precision), what computes bf16 products on the CPU (AVX512-BF16 or the
 * portable emulation; AMX is not implemented) and, with CUDA compiled in, the tier the CUDA LSTM kernels run.
 * With --json the same as one object; --threads resizes the kernel pool first (so the report shows it).
 */
import { loadNative, nativeStatus, describeNativeFailure, type NativeStatus } from '../../backend/native';
import type { GlobalOptions } from '../options';
import { cudaVersionText } from '../../backend/select';

export { cudaVersionText };

/** `deepsentry info --json` output. */
export interface InfoReport extends NativeStatus {
  /** what runs when the addon is missing, or null when it is loaded */
  fallback: string | null;
  /** what --backend picks on this machine and why (lib/backend/select.ts), or why it cannot be had */
  backend?: { requested: string; picked: 'cuda' | 'native' | 'cpu' | null; reason: string };
}

/** The backend `--backend <requested>` selects here, without failing info when it cannot be had. */
function backendChoice(requested: GlobalOptions['backend'], precision: GlobalOptions['precision']): NonNullable<InfoReport['backend']> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { useBackend } = require('../../backend/select') as typeof import('../../backend/select');
  try {
    const s = useBackend(requested, { precision });
    return { requested, picked: s.backend, reason: s.reason };
  } catch (e) {
    return { requested, picked: null, reason: (e as Error).message };
  }
}

export function infoReport(threads?: number): InfoReport {
  // nativeStatus() first: it loads without the one-time warning, which would repeat what info prints.
  if (nativeStatus().loaded && threads !== undefined) loadNative()?.setThreads(threads);
  const status = nativeStatus();
  return {
    ...status,
    fallback: status.loaded ? null : 'pure TypeScript / tfjs cpu backend (every command works, more slowly; no CUDA)',
  };
}

export function formatInfo(r: InfoReport): string {
  const out: string[] = [];
  const c = r.capabilities;
  if (r.backend) out.push(`backend:  --backend ${r.backend.requested} → ${r.backend.picked ?? 'unavailable'}: ${r.backend.reason}`);
  if (!r.loaded || c === null) {
    out.push('addon:    not loaded');
    out.push(describeNativeFailure(r));
    return out.join('\n') + '\n';
  }
  out.push(`addon:    ${r.path}`);
  out.push(`version:  ${c.version}`);
  out.push(`SIMD:     ${c.simd} (supported: ${c.simdSupported.join(', ')}; DEEPSENTRY_SIMD lowers the default)`);
  out.push(`threads:  ${c.threads} (--threads or DEEPSENTRY_THREADS)`);
  out.push(`precision: ${c.precision} (--precision fp32|bf16)`);
  out.push(`          bf16 products: ${c.bf16Instructions}${c.bf16Hardware ? '' : ' — this CPU (or SIMD level) has no AVX512-BF16: correct but slower than fp32'}; AMX tiles not implemented`);
  if (!c.cudaCompiled) {
    out.push(`CUDA:     not compiled in${c.cudaError ? ` (${c.cudaError})` : ''}`);
  } else {
    out.push(`CUDA:     compiled in; ${c.cudaDeviceCount} device(s)${c.cudaError ? `; not usable: ${c.cudaError}` : ''}`);
    out.push(`          runtime ${cudaVersionText(c.cudaRuntimeVersion)}, driver ${cudaVersionText(c.cudaDriverVersion)}`);
    out.push(`          LSTM products on CUDA: ${c.precision === 'bf16' ? 'bf16 (bf16 weights on the device, float32 accumulation on the CUDA cores, no tensor cores; backward float32)' : 'fp32'}`);
  }
  for (const n of r.notes) out.push(`note:     ${n}`);
  if (r.errors.length > 0) {
    out.push('tried before:');
    for (const e of r.errors) out.push(`  - ${e.error}`);
  }
  return out.join('\n') + '\n';
}

export async function runInfo(argv: GlobalOptions): Promise<void> {
  // the backend choice first: it sets the addon's precision, which the report then shows
  const backend = backendChoice(argv.backend ?? 'auto', argv.precision ?? 'fp32');
  const report = { ...infoReport(argv.threads), backend };
  process.stdout.write(argv.json ? JSON.stringify(report) + '\n' : formatInfo(report));
}
