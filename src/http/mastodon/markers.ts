/** Read positions (markers) and user preferences. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../services/context.js';
import { getMarkers, saveMarkers } from '../../services/markers.js';
import { findUser } from '../../services/accounts.js';
import { requireUser } from '../auth.js';
import { parse, zArray, zId } from '../validation.js';

const Timeline = z.enum(['home', 'notifications']);
const MarkerBody = z.object({
  home: z.object({ last_read_id: zId }).optional(),
  notifications: z.object({ last_read_id: zId }).optional(),
});

export async function markerRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get('/api/v1/markers', async (req) => {
    const me = requireUser(req, 'read:statuses');
    const { timeline } = parse(z.object({ timeline: zArray(z.string()).optional() }), req.query);
    const wanted = (timeline ?? []).filter((t): t is 'home' | 'notifications' => Timeline.safeParse(t).success);
    return getMarkers(ctx, me.accountId, wanted.length ? wanted : ['home', 'notifications']);
  });

  app.post('/api/v1/markers', async (req) => {
    const me = requireUser(req, 'write:statuses');
    const body = parse(MarkerBody, req.body);
    return saveMarkers(ctx, me.accountId, body);
  });

  app.get('/api/v1/preferences', async (req) => {
    const me = requireUser(req, 'read:accounts');
    const user = await findUser(ctx, me.accountId);
    return {
      'posting:default:visibility': user.default_visibility,
      'posting:default:sensitive': user.default_sensitive === 1,
      'posting:default:language': user.default_language,
      'reading:expand:media': 'default',
      'reading:expand:spoilers': false,
    };
  });
}
