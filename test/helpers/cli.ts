/** Runs the compiled `starling` CLI as a child process and hands back its exit code and output, failures included. */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const STARLING_BIN = resolve(import.meta.dirname, '../../bin/starling.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `env` replaces the child's environment (default: PATH only, so no STARLING_* of the caller leaks in). */
export async function runStarling(args: string[], opts: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<CliResult> {
  try {
    const r = await run(process.execPath, [STARLING_BIN, ...args], { env: opts.env ?? { PATH: process.env.PATH }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 10 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
