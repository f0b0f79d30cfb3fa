/**
 * Log ingestion: formats, masking, tokenizer, vocabulary, sessions, windows and the prepared-data directory.
 * Streaming throughout; independent of the native addon.
 */
export { DEFAULT_LOG_CONFIG, DEFAULT_MASK_RULES, resolveLogConfig } from './config';
export type { LogConfig, LogConfigOverrides, MaskRule, SessionConfig } from './config';
export { BUILTIN_FORMATS, DETECTION_ORDER, LOGHUB_TIME_FIELDS, LOGHUB_TIME_LAYOUTS, compileLoghubFormat, createFormat, detectFormat, inferLoghubTimestamp, parseFormatArg, ParseFailure } from './formats';
export type { Detection, FormatOptions, FormatSpec, LogFormat, ParsedLine, TimestampSpec } from './formats';
export { compileTimestamp } from './timestamp';
export type { TimestampFormat, TimestampParser } from './timestamp';
export { inputWarnings, IssueLog, ISSUE_KINDS } from './issues';
export type { IssueKind, LogIssue } from './issues';
export { readLineBatches, newReadStats } from './lines';
export type { LineBatch, ReadOptions, ReadStats } from './lines';
export { Masker } from './masking';
export type { MaskedValue, MaskResult } from './masking';
export { Tokenizer } from './tokenizer';
export type { TokenizerOptions, Tokenized } from './tokenizer';
export { Vocabulary, PAD_ID, EOS_ID, UNK_ID, PAD_TOKEN, EOS_TOKEN, UNK_TOKEN, SPECIAL_TOKENS } from './vocabulary';
export type { VocabularyJson } from './vocabulary';
export { Sessionizer, SessionKeyer, resolveSessionMode } from './sessions';
export type { ClosedSession, CloseReason, ResolvedSessionMode, SessionStats, SessionizerOptions, SessionizerState } from './sessions';
export { forEachWindow, sessionWindows, PAD_MESSAGE, END_MESSAGE, FIRST_MESSAGE_ID } from './windows';
export { LogProcessor, MessageTable, openLogInput, readRecords } from './pipeline';
export type { InputOptions } from './pipeline';
export type { LogRecord, MessageEntry, OpenedInput, ProcessStats, ProcessorOptions } from './pipeline';
export {
  prepareLogs,
  readPreparedManifest,
  readPreparedMessages,
  readPreparedSessions,
  readPreparedLines,
  decodeLineRecord,
  PREPARED_FILES,
  PREPARED_FORMAT,
  PREPARED_VERSION,
  LINE_RECORD_BYTES,
  NO_SESSION,
} from './prepared';
export type { PrepareOptions, PrepareSummary, PreparedManifest, PreparedLine, PreparedMessage, PreparedSession } from './prepared';
