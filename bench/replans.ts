/**
 * Statements that SQLite plans again on every run.
 *
 * SQLite's planner reads some bound values: a `LIMIT ?`, or a parameter compared
 * with the value a partial index is defined by. Binding such a parameter again
 * expires the statement's plan, and better-sqlite3 binds every parameter on
 * every run, so the statement cache saves the parse but not the planning
 * (docs/PERFORMANCE.md, "Statements planned on every run"). Nothing fails and
 * the results are right: the cost shows only as time, so this is a benchmark.
 *
 * What it does: it empties the node's statement cache (a fresh connection to the
 * same file), records each statement's latest parameters while it drives the
 * reading and writing API as a few seeded users, and then times each statement
 * with those parameters two ways, alternately: re-bound on every run (as the
 * server runs it) and bound once (`stmt.bind()`, then run without parameters,
 * which keeps the plan). A statement much slower re-bound is planned on every
 * run. Writes are timed inside a savepoint that is rolled back.
 *
 * better-sqlite3 does not expose sqlite3_stmt_status(SQLITE_STMTSTATUS_REPREPARE),
 * which would count the re-plans without timing anything.
 */
import type SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { log, startNode, table, tokenFor } from './lib.js';

export interface ReplansOptions {
  dataDir: string;
  /** Seeded users driven through the API (each reads the main pages and writes a little). */
  users: number;
  logLevel?: string;
  configFile?: string;
}

type Method = 'all' | 'get' | 'run' | 'iterate';
interface Seen {
  method: Method;
  args: unknown[];
  reader: boolean;
}

/**
 * Re-bound, less what binding the values costs, at least this many times slower than bound once, and by at least
 * FLAG_MICROS: planned on every run. The statements found so far were 2–10× (docs/PERFORMANCE.md); the others are
 * within 1.0–1.3× on this noisy machine.
 */
const FLAG_RATIO = 1.5;
const FLAG_MICROS = 5;

export async function replans(o: ReplansOptions): Promise<boolean> {
  // Load shedding off: the bench's requests come one after another and all of them must run.
  const node = await startNode(o.dataDir, { logLevel: o.logLevel, configFile: o.configFile, overrides: { pressure: { enabled: false } } });
  try {
    // A fresh connection: every statement the server runs from here on is prepared, and so seen, again.
    node.database.reopen();
    const handle = node.database.sqlite;
    const seen = new Map<string, Seen>();
    let recording = true;
    const prepare = handle.prepare.bind(handle);
    handle.prepare = ((text: string) => {
      const stmt = prepare(text);
      for (const method of ['all', 'get', 'run', 'iterate'] as const) {
        const original = (stmt[method] as (...a: unknown[]) => unknown).bind(stmt);
        (stmt as unknown as Record<Method, unknown>)[method] = (...args: unknown[]) => {
          if (recording) seen.set(text, { method, args, reader: stmt.reader });
          return original(...args);
        };
      }
      return stmt;
    }) as typeof handle.prepare;

    const failures = await drive(node, o.users);
    await node.idle();
    // Fan-out and notification jobs run after the posts were acknowledged.
    await new Promise((r) => setTimeout(r, 2000));
    recording = false;
    handle.prepare = prepare;

    const timed = measure(handle, seen);
    const flagged = timed.filter(planned);
    // A second, longer look at what the first flagged: the machine is noisy, a single pass is not a verdict.
    const confirmed = flagged.length ? measure(handle, new Map(flagged.map((t) => [t.text, seen.get(t.text)!])), 4).filter(planned) : [];

    log(`dataset: ${o.dataDir}; ${o.users} users drove the API (${failures.length} requests failed${failures.length ? `: ${failures.slice(0, 5).join('; ')}` : ''})`);
    log(`${seen.size} statements seen, ${timed.length} with parameters timed (µs per run, best of 5 rounds, re-bound and bound once alternately)`);
    const ratio = (t: Timed) => (t.rebound - t.binding) / t.once;
    const top = [...timed].sort((a, b) => ratio(b) - ratio(a)).slice(0, 12);
    console.log(
      table([
        ['re-bound µs', 'bound once µs', 'binding alone µs', '(re-bound − binding) / once', 'statement'],
        ...top.map((t) => [t.rebound.toFixed(1), t.once.toFixed(1), t.binding.toFixed(1), `${ratio(t).toFixed(2)}×`, oneLine(t.text, 100)]),
      ]),
    );
    if (confirmed.length === 0) {
      console.log(`no statement is planned on every run (none re-bound, less binding, ≥ ${FLAG_RATIO}× and ≥ ${FLAG_MICROS} µs slower than bound once in two looks)`);
      return true;
    }
    console.log(`PLANNED ON EVERY RUN (${confirmed.length}): write the value into the SQL (sql.lit, or a number the compiler inlines) instead of binding it:`);
    for (const t of confirmed) {
      const args = JSON.stringify(t.args, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
      console.log(`  ${t.rebound.toFixed(1)} µs re-bound (${t.binding.toFixed(1)} of it binding), ${t.once.toFixed(1)} µs bound once: ${oneLine(t.text, 300)}  -- ${args}`);
    }
    return false;
  } finally {
    await node.close();
  }
}

const oneLine = (text: string, max: number) => {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
};

/**
 * The requests: every page a client reads and the writes a user makes, as
 * `users` seeded accounts with the most followees (so home timelines merge
 * both halves of the feed). Returns the ones that did not answer 2xx.
 */
async function drive(node: Awaited<ReturnType<typeof startNode>>, users: number): Promise<string[]> {
  const { rows } = await sql<{ id: string; username: string }>`SELECT id, username FROM accounts WHERE following_count > 0 ORDER BY following_count DESC LIMIT ${sql.lit(users)}`.execute(node.ctx.db);
  if (rows.length === 0) throw new Error('the dataset has no account that follows anyone: seed it first');
  const { rows: tags } = await sql<{ name: string }>`SELECT name FROM tags ORDER BY id LIMIT 1`.execute(node.ctx.db);
  const tag = tags[0]?.name ?? 'starling';
  const failures: string[] = [];
  const call = async (token: string, method: 'GET' | 'POST', url: string, body?: unknown) => {
    const res = await node.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      payload: body ? JSON.stringify(body) : undefined,
    });
    if (res.statusCode >= 300) failures.push(`${method} ${url.split('?')[0]} → ${res.statusCode}`);
    return res.statusCode < 300 ? (res.json() as unknown) : null;
  };
  for (const [i, u] of rows.entries()) {
    const id = String(u.id);
    const t = tokenFor(id);
    const home = (await call(t, 'GET', '/api/v1/timelines/home?limit=20')) as { id: string; account: { id: string } }[] | null;
    const older = home?.at(-1)?.id;
    if (older) await call(t, 'GET', `/api/v1/timelines/home?limit=20&max_id=${older}`);
    const newer = home?.[0]?.id;
    if (newer) await call(t, 'GET', `/api/v1/timelines/home?limit=20&since_id=${older ?? newer}`);
    await call(t, 'GET', '/api/v1/timelines/public?limit=20');
    await call(t, 'GET', '/api/v1/timelines/public?local=true&limit=40');
    await call(t, 'GET', `/api/v1/timelines/tag/${encodeURIComponent(tag)}?limit=20`);
    await call(t, 'GET', `/api/v2/search?q=${encodeURIComponent(tag)}&type=statuses&limit=20`);
    await call(t, 'GET', `/api/v2/search?q=${encodeURIComponent(u.username.slice(0, 3))}&type=accounts&limit=5`);
    await call(t, 'GET', '/api/v1/notifications?limit=15');
    await call(t, 'GET', '/api/v1/trends/tags');
    await call(t, 'GET', '/api/v1/trends/statuses');
    await call(t, 'GET', '/api/v1/accounts/verify_credentials');
    await call(t, 'GET', `/api/v1/accounts/${id}/statuses?limit=20`);
    await call(t, 'GET', `/api/v1/accounts/${id}/following?limit=40`);
    await call(t, 'GET', '/api/v1/favourites?limit=20');
    await call(t, 'GET', '/api/v1/bookmarks?limit=20');
    const other = home?.find((s) => s.account.id !== id);
    if (other) {
      await call(t, 'GET', `/api/v1/statuses/${other.id}`);
      await call(t, 'GET', `/api/v1/statuses/${other.id}/context`);
      await call(t, 'GET', `/api/v1/accounts/relationships?id[]=${other.account.id}`);
      for (const action of ['favourite', 'bookmark', 'reblog']) await call(t, 'POST', `/api/v1/statuses/${other.id}/${action}`);
      await call(t, 'POST', '/api/v1/statuses', { status: `@${u.username} a reply from the replans bench #${tag}`, in_reply_to_id: other.id });
      for (const action of ['unfavourite', 'unbookmark', 'unreblog']) await call(t, 'POST', `/api/v1/statuses/${other.id}/${action}`);
      await call(t, 'POST', `/api/v1/accounts/${other.account.id}/unfollow`);
      await call(t, 'POST', `/api/v1/accounts/${other.account.id}/follow`);
    }
    await call(t, 'POST', '/api/v1/statuses', { status: `replans bench ${i} #${tag}` });
    // Let the jobs the writes queued run between users, as they would between requests.
    await new Promise((r) => setTimeout(r, 20));
  }
  return failures;
}

interface Timed {
  text: string;
  args: unknown[];
  /** µs per run, re-bound on every run (as the server runs it). */
  rebound: number;
  /** µs per run, bound once. */
  once: number;
  /** µs per run that binding the same values costs in a statement with nothing to plan (its re-bound less its bound once). */
  binding: number;
}

/** What re-binding costs beyond the binding itself: the planning. */
const excess = (t: Timed) => t.rebound - t.binding - t.once;
const planned = (t: Timed) => (t.rebound - t.binding) / t.once >= FLAG_RATIO && excess(t) >= FLAG_MICROS;

/**
 * Each statement with parameters, re-bound on every run against bound once, and a control statement with the
 * same values (`SELECT 1 WHERE 1 IN (?, ?, …)`, nothing to plan) both ways, so that a statement with hundreds
 * of parameters is not mistaken for one planned again. Alternately, best of 5 rounds of `runs` runs each.
 */
function measure(db: SQLite.Database, seen: Map<string, Seen>, scale = 1): Timed[] {
  const out: Timed[] = [];
  const runs = 40 * scale;
  for (const [text, s] of seen) {
    if (s.args.length === 0 || /^\s*(begin|commit|rollback|savepoint|release|pragma)\b/i.test(text)) continue;
    // Kysely's driver passes the parameters as one array.
    const values = s.args.flat();
    let rebound: SQLite.Statement;
    let bound: SQLite.Statement;
    try {
      rebound = db.prepare(text);
      bound = db.prepare(text).bind(...s.args);
    } catch {
      continue;
    }
    const control = `SELECT 1 WHERE 1 IN (${values.map(() => '?').join(', ')})`;
    const controlRebound = db.prepare(control);
    const controlBound = db.prepare(control).bind(...values);
    const call = (stmt: SQLite.Statement, args: unknown[]) => {
      if (s.method === 'iterate') for (const _row of stmt.iterate(...args)) void _row;
      else stmt[s.method](...args);
    };
    // Writes change nothing: each run is undone. Reads run bare, so the savepoint does not hide their difference.
    const undone = (f: () => void) =>
      s.reader
        ? f
        : () => {
            db.exec('SAVEPOINT replans');
            try {
              f();
            } finally {
              db.exec('ROLLBACK TO replans');
              db.exec('RELEASE replans');
            }
          };
    const a = undone(() => call(rebound, s.args));
    const b = undone(() => call(bound, []));
    try {
      a();
      b();
    } catch {
      // A write that fails when repeated (a unique key taken by its first run) is left out.
      continue;
    }
    const best = { rebound: Infinity, once: Infinity, controlRebound: Infinity, controlOnce: Infinity };
    for (let round = 0; round < 5; round++) {
      best.rebound = Math.min(best.rebound, time(a, runs));
      best.once = Math.min(best.once, time(b, runs));
      best.controlRebound = Math.min(best.controlRebound, time(() => void controlRebound.get(...values), runs));
      best.controlOnce = Math.min(best.controlOnce, time(() => void controlBound.get(), runs));
    }
    out.push({ text, args: values, rebound: best.rebound, once: best.once, binding: Math.max(0, best.controlRebound - best.controlOnce) });
  }
  return out;
}

function time(f: () => void, runs: number): number {
  const start = performance.now();
  for (let i = 0; i < runs; i++) f();
  return ((performance.now() - start) / runs) * 1000;
}
