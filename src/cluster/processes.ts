/**
 * Child processes for the local cluster: started detached (they outlive the
 * `starling cluster up` that started them, and `down` finds them by PID),
 * output to a log file, optionally as another user (PostgreSQL and Patroni
 * refuse to run as root), stopped by PID with SIGTERM then SIGKILL.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';

export interface SpawnSpec {
  cmd: string;
  args: string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** stdout and stderr go here (appended). */
  logFile: string;
  /** Run as this user (through setpriv), e.g. 'postgres' when we are root. */
  asUser?: string;
  /** Detached: its own process group, not killed with us. Tests keep it attached. */
  detached?: boolean;
}

/** Starts a process and returns its PID (of the program itself: setpriv execs it, so the PID is the same). */
export function spawnLogged(spec: SpawnSpec): number {
  const fd = openSync(spec.logFile, 'a');
  try {
    const [cmd, args] = spec.asUser
      ? ['setpriv', [`--reuid=${spec.asUser}`, `--regid=${spec.asUser}`, '--init-groups', '--', spec.cmd, ...spec.args]]
      : [spec.cmd, spec.args];
    const child = spawn(cmd, args, {
      cwd: spec.cwd,
      env: { ...(spec.env ?? process.env) } as NodeJS.ProcessEnv,
      stdio: ['ignore', fd, fd],
      detached: spec.detached ?? true,
    });
    if (child.pid === undefined) throw new Error(`could not start ${spec.cmd}`);
    // An exec failure arrives as an 'error' event; without a listener it would crash the launcher.
    child.on('error', () => {});
    if (spec.detached ?? true) child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** True if a process with this PID exists and is not a zombie (exited, not yet reaped by its parent). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // The state letter follows the name, which may hold spaces and parentheses: read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** SIGTERM, wait up to graceMs, then SIGKILL; resolves once the process is gone. Returns how it ended. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<'not running' | 'terminated' | 'killed'> {
  if (!isAlive(pid)) return 'not running';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'not running';
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'terminated';
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone meanwhile */
  }
  for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(50);
  return 'killed';
}

/** Polls until check() returns truthy, or throws `what` after timeoutMs. */
export async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last ? ` (${(last as Error).message ?? String(last)})` : ''}`);
    await sleep(everyMs);
  }
}

/** Whether something accepts TCP connections on host:port. */
export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * `n` distinct ports free on 127.0.0.1 right now: all are held open together
 * (so none is handed out twice), then released for the caller to bind.
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, host, () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
