/**
 * Tests that need Debian's servers (nats-server, etcd, patroni, haproxy,
 * PostgreSQL): on CI (CI=true) a missing binary fails the test, as .ci/run
 * installs them; locally it skips with the reason.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function missingBinaries(names: readonly string[]): string[] {
  return names.filter((name) => {
    if (name.startsWith('/')) return !existsSync(name);
    try {
      execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

/** Returns a skip reason (local, binaries missing) or null; throws on CI when something is missing. */
export function needBinaries(names: readonly string[]): string | null {
  const missing = missingBinaries(names);
  if (missing.length === 0) return null;
  const reason = `missing ${missing.join(', ')} (Debian packages; .ci/run installs them)`;
  if (process.env.CI === 'true') throw new Error(reason);
  console.warn(`skipping: ${reason}`);
  return reason;
}
