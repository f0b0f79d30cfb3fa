/**
 * Inside score's reader thread (see score_reader.ts): reads, parses, keys and masks the file it is given and
 * posts the chunks to the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runReader, type ReaderSpec } from './score_reader';

void runReader(workerData as ReaderSpec, parentPort!);
