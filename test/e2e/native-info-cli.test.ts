/**
 * `deepsentry info` and the loader's report, run as the CLI runs (a child process, so each case gets its own
 * environment and a fresh loader): the addon's path, version, SIMD levels, threads (honouring --threads) and
 * CUDA status; and, when the addon is off or broken, why and what still works.
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../../lib/backend/native';
import type { InfoReport } from '../../lib/cli/commands/info-impl';
import { runCli, runTs } from '../support/cli';
import { nativeOrSkip } from '../support/native-helpers';
import { tempDir } from '../support/tmp';

const root = packageRoot();

function cli(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { env, timeout: 60_000 });
}

describe('deepsentry info (child process)', function () {
  it('--json: addon path, version, SIMD, threads (from --threads) and CUDA status', function () {
    nativeOrSkip(this);
    const r = cli(['info', '--json', '--threads', '1']);
    expect(r.code, r.stderr).to.equal(0);
    const rep = JSON.parse(r.stdout) as InfoReport;
    expect(rep.loaded).to.equal(true);
    expect(rep.path).to.match(/deepsentry\.node$/);
    expect(rep.fallback).to.equal(null);
    const c = rep.capabilities!;
    expect(c.version).to.equal(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
    expect(c.threads).to.equal(1);
    expect(c.simdSupported).to.include(c.simd);
    expect(c.simdSupported[0]).to.equal('baseline');
    expect(c.cudaCompiled).to.be.a('boolean');
    if (c.cudaCompiled && c.cudaDeviceCount === 0) {
      expect(c.cudaError, 'no device: the CUDA error says why').to.be.a('string').and.not.equal('');
    }
    if (c.cudaCompiled) expect(c.cudaRuntimeVersion).to.be.a('number');
  });

  it('prints the same as text, and --threads changes it', function () {
    nativeOrSkip(this);
    const r = cli(['info', '--threads', '2']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^addon: +\S*deepsentry\.node$/m);
    expect(r.stdout).to.match(/^SIMD: +(baseline|avx2|avx512) \(supported: baseline/m);
    expect(r.stdout).to.match(/^threads: +2 /m);
    expect(r.stdout).to.match(/^CUDA: +(not compiled in|compiled in; \d+ device)/m);
  });

  it('--precision bf16: the tier and the instructions that compute it; an unknown tier is a usage error', function () {
    nativeOrSkip(this);
    const r = cli(['info', '--precision', 'bf16']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^precision: bf16 /m);
    expect(r.stdout).to.match(/bf16 products: (AVX512-BF16 \(vcvtne2ps2bf16, vdpbf16ps\)|plain C\+\+)/);
    expect(r.stdout).to.contain('AMX tiles not implemented');
    if (/^CUDA: +compiled in/m.test(r.stdout)) expect(r.stdout).to.match(/^ +LSTM products on CUDA: bf16 \(bf16 weights on the device/m);
    expect(r.stdout).to.match(/^backend: +--backend auto → native: .*bf16 products on/m);
    const j = JSON.parse(cli(['info', '--json', '--precision', 'bf16']).stdout) as InfoReport;
    expect(j.capabilities!.precision).to.equal('bf16');
    expect(j.capabilities!.bf16Kernels).to.equal(j.capabilities!.bf16Hardware && j.capabilities!.simd === 'avx512' ? 'avx512bf16' : 'portable');
    expect((JSON.parse(cli(['info', '--json']).stdout) as InfoReport).capabilities!.precision).to.equal('fp32');
    const bad = cli(['info', '--precision', 'fp16']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/precision.*fp16/s);
  });

  it('with the addon turned off: says so and what still works (exit 0)', () => {
    const r = cli(['info'], { DEEPSENTRY_NATIVE: 'none' });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('addon:    not loaded');
    expect(r.stdout).to.contain('DEEPSENTRY_NATIVE');
    expect(r.stdout).to.contain('What still works');
    const j = JSON.parse(cli(['info', '--json'], { DEEPSENTRY_NATIVE: 'none' }).stdout) as InfoReport;
    expect(j.loaded).to.equal(false);
    expect(j.capabilities).to.equal(null);
    expect(j.fallback).to.match(/TypeScript/);
  });

  it('a broken or missing DEEPSENTRY_NATIVE file is reported; another build is used, with a warning', function () {
    nativeOrSkip(this);
    const bogus = path.join(tempDir('info'), 'deepsentry.node');
    fs.writeFileSync(bogus, 'not an ELF file');
    const r = cli(['info', '--json'], { DEEPSENTRY_NATIVE: bogus });
    const rep = JSON.parse(r.stdout) as InfoReport;
    expect(rep.errors[0].path).to.equal(bogus);
    expect(rep.errors[0].error).to.contain('failed to load');
    expect(rep.loaded).to.equal(true);
    // a library user (not info, which prints the report itself) gets a warning naming the failed override
    const missing = path.join(path.dirname(bogus), 'missing.node');
    const w = runTs("require('./lib/backend/native').loadNative()", { env: { DEEPSENTRY_NATIVE: missing }, timeout: 60_000 });
    expect(w.stderr).to.contain('DEEPSENTRY_NATIVE');
    expect(w.stderr).to.contain(`${missing} does not exist (not built)`);
  });
});
