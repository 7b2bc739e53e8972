/** The Mastodon client API, one module per resource. */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../services/context.js';
import { appRoutes } from './apps.js';
import { accountRoutes } from './accounts.js';
import { followRequestRoutes } from './follow-requests.js';
import { statusRoutes } from './statuses.js';
import { timelineRoutes } from './timelines.js';
import { instanceRoutes } from './instance.js';
import { markerRoutes } from './markers.js';
import { notificationRoutes } from './notifications.js';
import { searchRoutes } from './search.js';
import { tagRoutes } from './tags.js';
import { archiveRoutes } from './archive.js';

export async function mastodonRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  for (const routes of [
    appRoutes,
    accountRoutes,
    followRequestRoutes,
    statusRoutes,
    timelineRoutes,
    instanceRoutes,
    markerRoutes,
    notificationRoutes,
    searchRoutes,
    tagRoutes,
    archiveRoutes,
  ]) {
    await app.register(routes, opts);
  }
}
