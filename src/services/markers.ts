/** Markers: where a person stopped reading, kept per timeline, with a version for optimistic updates. */
import { sql } from 'kysely';
import type { AppContext } from './context.js';

type Timeline = 'home' | 'notifications';

function render(r: { timeline: string; last_read_id: string; version: number; updated_at: string }) {
  return { last_read_id: r.last_read_id, version: r.version, updated_at: r.updated_at };
}

export async function getMarkers(ctx: AppContext, accountId: string, timelines: Timeline[]) {
  const rows = await ctx.db.selectFrom('markers').selectAll().where('account_id', '=', accountId).where('timeline', 'in', timelines).execute();
  return Object.fromEntries(rows.map((r) => [r.timeline, render(r)]));
}

export async function saveMarkers(ctx: AppContext, accountId: string, input: Partial<Record<Timeline, { last_read_id: string }>>) {
  const now = ctx.now().toISOString();
  await ctx.write(async (trx) => {
    for (const timeline of ['home', 'notifications'] as const) {
      const m = input[timeline];
      if (!m) continue;
      await trx
        .insertInto('markers')
        .values({ account_id: accountId, timeline, last_read_id: m.last_read_id, updated_at: now })
        .onConflict((oc) => oc.columns(['account_id', 'timeline']).doUpdateSet({ last_read_id: m.last_read_id, updated_at: now, version: sql`markers.version + 1` }))
        .execute();
    }
  });
  return getMarkers(ctx, accountId, (['home', 'notifications'] as const).filter((t) => input[t]));
}
