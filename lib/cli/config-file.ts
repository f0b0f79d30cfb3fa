/**
 * `--config FILE`: reads a pipeline configuration file (YAML, or JSON by its .json extension) and resolves it
 * with the library's resolvePipelineConfig (defaults filled, every key checked), errors naming the flag and file.
 */
import { promises as fsp } from 'node:fs';
import { DeepSentryError } from '../errors';
import { resolvePipelineConfig, type PipelineConfig } from '../pipeline/config';

/** Reads and parses a config file (YAML, or JSON by its .json extension) and resolves it. */
export async function loadPipelineConfig(path: string | undefined): Promise<PipelineConfig> {
  if (path === undefined) return resolvePipelineConfig({});
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    throw new DeepSentryError('DS_CONFIG', `Cannot read --config ${path}: ${(e as Error).message}`);
  }
  const json = /\.json$/i.test(path);
  let doc: unknown;
  try {
    doc = json ? JSON.parse(text) : (await import('yaml')).parse(text);
  } catch (e) {
    throw new DeepSentryError('DS_CONFIG', `--config ${path} is not valid ${json ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  return resolvePipelineConfig(doc ?? {}, `--config ${path}`);
}
