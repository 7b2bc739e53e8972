/**
 * WAL checkpoints on a thread of their own.
 *
 * In WAL mode every commit appends to the `-wal` file, and a checkpoint copies
 * those pages back into the database file and fsyncs it. By default SQLite
 * runs one inside whichever commit takes the WAL past 1,000 pages, on the
 * committing connection: better-sqlite3 is synchronous, so that checkpoint
 * holds the event loop, and every request waiting meanwhile. Under the
 * overload bench (writes at 30–45 MB/s) this thread's rounds take 2–2.4 s of
 * every 13 s, the longest 65–107 ms: each of those would have stalled every
 * request on the node.
 *
 * Here a worker thread with its own connection runs a PASSIVE checkpoint
 * every `intervalMs`. PASSIVE never waits for readers or the writer and never
 * blocks them: it copies what it can and leaves the rest for the next round.
 * Once it has copied everything, the next write transaction starts the WAL
 * over from its beginning, so the file stays small. The serving connection
 * keeps an automatic checkpoint only as a backstop (BACKSTOP_PAGES), for a
 * worker that died or cannot keep up, or writes that never pause.
 *
 * Checkpoints are crash-safe whichever connection runs them; a checkpoint that
 * fails (a full disk) loses nothing: the pages stay in the WAL, readers see
 * them there, and the next round tries again.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

/**
 * The serving connection checkpoints by itself only past this many WAL pages (16 MiB of 4 KiB pages). A WAL
 * starts over at a write that finds it fully checkpointed; under writes without a pause the thread is always a
 * few frames behind, so the WAL would grow for ever without this. By then the thread has copied nearly all of
 * it, and this checkpoint has little left to do.
 */
export const BACKSTOP_PAGES = 4096;

export interface CheckpointStats {
  /** Checkpoint rounds run. */
  rounds: number;
  /** Rounds that could not copy every page (a reader or the writer was using the newest ones). */
  partial: number;
  /** Rounds that failed (the error went to `onError`). */
  failed: number;
  /** Time spent checkpointing, in all and the longest round (ms): time the event loop no longer spends. */
  totalMs: number;
  maxMs: number;
}

export interface Checkpointer {
  stats(): CheckpointStats;
  /** Stops the thread and closes its connection. */
  stop(): Promise<void>;
}

const FIELDS = ['rounds', 'partial', 'failed', 'totalMs', 'maxMs'] as const;

// CommonJS, run by the worker as a string (eval): the same code whether the server runs from TypeScript sources
// (tests) or from dist/. The stats go through shared memory, so a round costs the main thread nothing.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const stats = new Float64Array(workerData.stats);
const [ROUNDS, PARTIAL, FAILED, TOTAL, MAX] = [0, 1, 2, 3, 4];
let db = null;
const round = () => {
  const t = performance.now();
  try {
    if (!db) db = new Database(workerData.file, { fileMustExist: true });
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    stats[ROUNDS]++;
    // busy: the checkpoint could not start; log: frames in the WAL; checkpointed: frames now in the database file.
    if (r.busy || r.checkpointed < r.log) stats[PARTIAL]++;
  } catch (err) {
    stats[FAILED]++;
    parentPort.postMessage({ message: err && err.message, code: err && err.code });
    try { db && db.close(); } catch {}
    db = null;
  }
  const ms = performance.now() - t;
  stats[TOTAL] += ms;
  if (ms > stats[MAX]) stats[MAX] = ms;
};
const timer = setInterval(round, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  try { db && db.close(); } catch {}
  parentPort.close();
});
`;

export function startCheckpointer(file: string, opts: { intervalMs?: number; onError?: (err: { message: string; code?: string }) => void } = {}): Checkpointer {
  const stats = new SharedArrayBuffer(FIELDS.length * Float64Array.BYTES_PER_ELEMENT);
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { file, intervalMs: opts.intervalMs ?? 200, module: createRequire(import.meta.url).resolve('better-sqlite3'), stats },
  });
  // The thread never keeps the process alive: stopping the server stops it, and a process that exits loses nothing.
  worker.unref();
  worker.on('message', (m: { message: string; code?: string }) => opts.onError?.(m));
  worker.on('error', (err) => opts.onError?.({ message: err.message }));
  const view = new Float64Array(stats);
  // A thread that ended by itself (an uncaught error: already reported) has nothing left to stop.
  let exited = false;
  worker.once('exit', () => (exited = true));
  let stopped: Promise<void> | null = null;
  return {
    stats: () => Object.fromEntries(FIELDS.map((f, i) => [f, view[i]])) as unknown as CheckpointStats,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        if (exited) return resolve();
        worker.once('exit', () => resolve());
        // Held now: with nothing else left to do, a process waiting for this would otherwise just exit, unfinished.
        worker.ref();
        worker.postMessage('stop');
        // A thread stuck in a checkpoint (a hung disk) is not waited for long.
        setTimeout(() => void worker.terminate(), 2000).unref();
      });
      return stopped;
    },
  };
}
