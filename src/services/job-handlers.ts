/** What each kind of background job does. Every handler is safe to run twice. */
import type { JobHandlers } from './jobs.js';
import { fanOut, unfanOut, mergeInto, unmergeFrom } from './feeds.js';
import { createNotification } from './notifications.js';

export const jobHandlers: JobHandlers = {
  fanout: (ctx, p) => fanOut(ctx, p.statusId),
  unfanout: (ctx, p) => unfanOut(ctx, p.statusId),
  'feed.merge': (ctx, p) => mergeInto(ctx, p.accountId, p.targetAccountId),
  'feed.unmerge': (ctx, p) => unmergeFrom(ctx, p.accountId, p.targetAccountId),
  notify: (ctx, p) => createNotification(ctx, p),
};
