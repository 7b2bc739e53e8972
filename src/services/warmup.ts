/**
 * Warming up before a node says it is ready: the first request down each hot
 * path pays for compiling the code and statements and for reading the pages
 * it needs from disk. A node that has just (re)started behind a load balancer
 * would make its first users pay that, all at once and while it is busiest.
 * So the hot reads run once, here, before the node listens (and so before
 * /readyz can say ready), within a time budget: a slow disk delays readiness
 * by at most the budget, and a failure here only means a colder start.
 */
import type { AppContext } from './context.js';
import { homeTimeline, publicTimeline } from './timelines.js';
import { search } from './search.js';
import { statusViews } from './views.js';

export interface WarmUpReport {
  ms: number;
  done: string[];
  skipped: string[];
}

export async function warmUp(ctx: AppContext, budgetMs = 3000): Promise<WarmUpReport> {
  const started = performance.now();
  const done: string[] = [];
  const skipped: string[] = [];
  // Someone who posted lately: their home timeline is a representative one.
  const recent = await ctx.db.selectFrom('statuses').select('account_id').orderBy('id', 'desc').limit(1).executeTakeFirst();
  const viewer = recent ? String(recent.account_id) : null;
  const steps: [string, () => Promise<unknown>][] = [
    ['public timeline', async () => statusViews(ctx, await publicTimeline(ctx, viewer, { limit: 20 }), viewer)],
    ['home timeline', async () => (viewer ? statusViews(ctx, await homeTimeline(ctx, viewer, { limit: 20 }), viewer) : null)],
    ['search', () => search(ctx, viewer, { q: 'the', type: 'statuses', limit: 5, offset: 0 })],
  ];
  for (const [name, run] of steps) {
    if (performance.now() - started > budgetMs) {
      skipped.push(name);
      continue;
    }
    try {
      await run();
      done.push(name);
    } catch (err) {
      ctx.log.warn({ err, step: name }, 'warm-up step failed; the node starts colder');
      skipped.push(name);
    }
  }
  return { ms: Math.round(performance.now() - started), done, skipped };
}
