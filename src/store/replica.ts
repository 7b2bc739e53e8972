/**
 * Reads from a PostgreSQL replica where staleness is harmless, with read-your-writes for authors.
 *
 * The guarantee, and why it holds across app nodes. Every write transaction made for a signed-in account
 * records, in that same transaction, the account's read fence: `read_fences(account_id, xid)` set to
 * pg_current_xact_id() (`recordFences`, called by the writer just before COMMIT). Authentication reads the
 * token on the primary on every request, and the fence with it (services/auth.ts). So a request that starts
 * after a write was acknowledged, on any node, sees that write's fence, or a later one: the fence row is
 * locked by each writing transaction until it commits, so the value left is that of the last one to commit,
 * and a standby applies commits in the primary's WAL order. A read by the account may use the replica only
 * when the replica reports that transaction committed (`pg_xact_status(xid)`: a standby answers from the
 * commit records it has replayed); any later query on the replica takes a snapshot that includes it. Until
 * then the read goes to the primary. No clocks, no lag estimate, no node-local memory is involved: the
 * fence lives in the primary and the check asks the replica itself.
 *
 * Not covered: writes made outside a signed-in request (the job worker's fan-out, an account being created
 * under an app token) carry no fence, and the reads that depend on them (home timeline, notifications) never
 * use the replica.
 *
 * A replica that fails (down, too slow, a recovery conflict) sends reads to the primary for `coolDownMs`.
 *
 * The fence is checked on one pooled connection and the reads run on others: every connection of the pool
 * must reach the same replica. A single standby, a multi-host URL with prefer-standby (every connection
 * settles on the first standby in the list) and HAProxy with `balance first` (src/cluster/configs.ts) do;
 * HAProxy round robin over several replicas would not.
 */
import { sql, type Transaction } from 'kysely';
import type { Db } from './db.js';
import type { Database } from './schema.js';
import { classifyDbError } from './errors.js';

/** Where one read went: the replica, the primary because of the viewer's fence, or the primary because the replica failed. */
export type ReadTarget = 'replica' | 'primary' | 'fallback';

export interface ReplicaReads {
  readonly db: Db;
  /** Where a read by a viewer with this fence (null: no fence, or anonymous) should go now. */
  choose(fence: string | null): Promise<ReadTarget>;
  /** The replica failed a read: reads go to the primary for a while. */
  failed(err: unknown): void;
}

/** Fences known to be applied on the replica: applied stays applied, so the question is asked once per fence. */
const APPLIED_CACHE = 10_000;

export function createReplicaReads(db: Db, opts: { coolDownMs?: number; onFailure?: (err: unknown) => void } = {}): ReplicaReads {
  const coolDownMs = opts.coolDownMs ?? 5000;
  let downUntil = 0;
  const applied = new Set<string>();
  const reads: ReplicaReads = {
    db,
    failed(err) {
      downUntil = Date.now() + coolDownMs;
      // The next connections may reach another replica (HAProxy moved on), which may be further behind.
      applied.clear();
      opts.onFailure?.(err);
    },
    async choose(fence) {
      if (Date.now() < downUntil) return 'fallback';
      if (fence === null || applied.has(fence)) return 'replica';
      let status: string | null;
      try {
        const { rows } = await sql<{ status: string | null }>`SELECT pg_xact_status(${fence}::xid8) AS status`.execute(db);
        status = rows[0]?.status ?? null;
      } catch (err) {
        // 22023: "transaction ID … is in the future": the replica has not replayed as far as the fence's transaction.
        if ((err as { code?: unknown }).code === '22023') return 'primary';
        if (classifyDbError(err) === 'other') throw err;
        reads.failed(err);
        return 'fallback';
      }
      // Null: too old for the replica to keep its status, so long since replayed.
      if (status !== 'committed' && status !== null) return 'primary';
      if (applied.size >= APPLIED_CACHE) applied.clear();
      applied.add(fence);
      return 'replica';
    },
  };
  return reads;
}

/**
 * Sets the read fence of these accounts to the current transaction, inside it. One statement per batch, the
 * ids in order: transactions on several nodes that fence the same accounts lock their rows in the same order.
 */
export async function recordFences(trx: Transaction<Database>, accountIds: readonly (string | null | undefined)[]): Promise<void> {
  const ids = [...new Set(accountIds.filter((id): id is string => typeof id === 'string'))].sort();
  if (ids.length === 0) return;
  await trx
    .insertInto('read_fences')
    .values(ids.map((id) => ({ account_id: id, xid: sql<string>`pg_current_xact_id()::text` })))
    .onConflict((oc) => oc.column('account_id').doUpdateSet({ xid: (eb) => eb.ref('excluded.xid') }))
    .execute();
}
