/** Follow requests to a locked account: list, authorize, reject. */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../services/context.js';
import { authorizeFollowRequest, rejectFollowRequest } from '../../services/graph.js';
import { requireUser } from '../auth.js';
import { pathId, sendGraphPage } from './accounts.js';

export async function followRequestRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.get('/api/v1/follow_requests', async (req, reply) => {
    const { accountId } = requireUser(req, 'read:follows');
    return sendGraphPage(ctx, req, reply, 'follow_requests', accountId);
  });

  app.post('/api/v1/follow_requests/:id/authorize', async (req) => {
    const { accountId } = requireUser(req, 'write:follows');
    return authorizeFollowRequest(ctx, accountId, pathId(req));
  });

  app.post('/api/v1/follow_requests/:id/reject', async (req) => {
    const { accountId } = requireUser(req, 'write:follows');
    return rejectFollowRequest(ctx, accountId, pathId(req));
  });
}
