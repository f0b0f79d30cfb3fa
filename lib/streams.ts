/**
 * Writing to a file stream with backpressure, shared by every layer that streams its output
 * (prepared data, score CSVs): memory stays flat however large the output.
 */
import type { WriteStream } from 'node:fs';

/** Writes; returns null when the stream can take more at once, else a promise that resolves on 'drain'. */
export function writeWithBackpressure(ws: WriteStream, data: string | Buffer): Promise<void> | null {
  if (ws.write(data)) return null;
  return new Promise((resolve, reject) => {
    const onErr = (e: Error) => reject(e);
    ws.once('error', onErr);
    ws.once('drain', () => {
      ws.off('error', onErr);
      resolve();
    });
  });
}

/** Ends the stream; resolves once everything is flushed to the file. */
export function endStream(ws: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.end(() => resolve());
  });
}
