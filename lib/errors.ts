/**
 * Every error DeepSentry throws on purpose is a DeepSentryError with a stable string `code`, so callers can
 * branch on `err.code` instead of parsing messages. The native addon is handed this class at load and throws
 * it too (codes from native start with `DS_`).
 */
export type DeepSentryErrorCode =
  | 'DS_INVALID_ARGUMENT' // wrong type or value of an argument
  | 'DS_SHAPE_MISMATCH' // array length or dimensions do not agree
  | 'DS_OUT_OF_RANGE' // an index or size outside what is allowed
  | 'DS_UNSUPPORTED' // the request needs something this build/machine lacks (e.g. a SIMD level, CUDA)
  | 'DS_CUDA' // a CUDA runtime call failed
  | 'DS_NATIVE_UNAVAILABLE' // the addon could not be loaded
  | 'DS_PARSE' // input data (a log line, a label file) could not be parsed
  | 'DS_IO' // a file could not be read or written
  | 'DS_MODEL' // a model directory is missing, corrupt or incompatible
  | 'DS_CONFIG' // configuration file or option error
  | 'DS_CANCELLED'; // an operation was cancelled by its caller

export class DeepSentryError extends Error {
  readonly code: DeepSentryErrorCode;
  constructor(code: DeepSentryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeepSentryError';
    this.code = code;
  }
}

/** Describes a received value for an error message: its type and, when short, its value. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as { length?: number }).length ?? value.byteLength})`;
  if (Array.isArray(value)) return `array(${value.length})`;
  const t = typeof value;
  if (t === 'string') {
    const s = value as string;
    return `string ${JSON.stringify(s.length > 40 ? s.slice(0, 40) + '…' : s)}`;
  }
  if (t === 'number' || t === 'boolean' || t === 'bigint') return `${t} ${String(value)}`;
  if (t === 'function') return 'function';
  return (value as object).constructor?.name ?? 'object';
}

/** sharp-style: "Expected positive integer for hiddenSize but received number -3". */
export function invalidParameterError(name: string, expected: string, actual: unknown): DeepSentryError {
  return new DeepSentryError('DS_INVALID_ARGUMENT', `Expected ${expected} for ${name} but received ${describeValue(actual)}`);
}
