/**
 * Instance discovery: what clients read first (v2 then v1 instance, NodeInfo)
 * and the small endpoints they call after sign-in. Missing fields break
 * clients as surely as missing routes, so the shapes are complete.
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../services/context.js';
import { MAX_STATUS_CHARS, URL_PLACEHOLDER_CHARS } from '../../domain/text.js';
import { instanceStats, findAdminContact } from '../../services/instance.js';
import { renderAccount } from '../../domain/entities.js';
import { STARLING_VERSION, MASTODON_COMPAT_VERSION } from '../../version.js';

/** A 1×1 grey PNG: the avatar and header of every account until media arrives. */
const MISSING_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mP8Xw8AAoMBgDTD2qgAAAAASUVORK5CYII=', 'base64');

export async function instanceRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const version = `${MASTODON_COMPAT_VERSION} (compatible; Starling ${STARLING_VERSION})`;
  const statusConfig = {
    max_characters: MAX_STATUS_CHARS,
    max_media_attachments: 0,
    characters_reserved_per_url: URL_PLACEHOLDER_CHARS,
  };
  const mediaConfig = {
    supported_mime_types: [],
    image_size_limit: 0,
    image_matrix_limit: 0,
    video_size_limit: 0,
    video_frame_rate_limit: 0,
    video_matrix_limit: 0,
    description_limit: 1500,
  };
  const pollConfig = { max_options: 0, max_characters_per_option: 0, min_expiration: 0, max_expiration: 0 };
  const streamingUrl = () => ctx.urls.base.replace(/^http/, 'ws');

  app.get('/api/v2/instance', async () => {
    const admin = await findAdminContact(ctx);
    return {
      domain: ctx.urls.domain,
      title: ctx.config.instanceTitle,
      version,
      source_url: 'https://starling.invalid/source',
      description: ctx.config.instanceDescription,
      usage: { users: { active_month: (await instanceStats(ctx)).users } },
      thumbnail: { url: `${ctx.urls.base}/avatars/original/missing.png`, blurhash: null, versions: {} },
      icon: [],
      languages: ['en'],
      configuration: {
        urls: { streaming: streamingUrl(), status: `${ctx.urls.base}/status` },
        vapid: { public_key: '' },
        accounts: { max_featured_tags: 0, max_pinned_statuses: 0 },
        statuses: statusConfig,
        media_attachments: mediaConfig,
        polls: pollConfig,
        translation: { enabled: false },
      },
      registrations: { enabled: ctx.config.registrationsOpen, approval_required: false, message: null, url: null },
      api_versions: { mastodon: 2 },
      contact: { email: ctx.config.contactEmail, account: admin ? renderAccount(admin, ctx.urls) : null },
      rules: [],
    };
  });

  app.get('/api/v1/instance', async () => {
    const stats = await instanceStats(ctx);
    const admin = await findAdminContact(ctx);
    return {
      uri: ctx.urls.domain,
      title: ctx.config.instanceTitle,
      short_description: ctx.config.instanceDescription,
      description: ctx.config.instanceDescription,
      email: ctx.config.contactEmail,
      version,
      urls: { streaming_api: streamingUrl() },
      stats: { user_count: stats.users, status_count: stats.statuses, domain_count: 0 },
      thumbnail: `${ctx.urls.base}/avatars/original/missing.png`,
      languages: ['en'],
      registrations: ctx.config.registrationsOpen,
      approval_required: false,
      invites_enabled: false,
      configuration: { statuses: statusConfig, media_attachments: mediaConfig, polls: pollConfig },
      contact_account: admin ? renderAccount(admin, ctx.urls) : null,
      rules: [],
    };
  });

  app.get('/.well-known/nodeinfo', async () => ({
    links: [
      { rel: 'http://nodeinfo.diaspora.software/ns/schema/2.0', href: `${ctx.urls.base}/nodeinfo/2.0` },
      { rel: 'http://nodeinfo.diaspora.software/ns/schema/2.1', href: `${ctx.urls.base}/nodeinfo/2.1` },
    ],
  }));

  for (const v of ['2.0', '2.1'] as const) {
    app.get(`/nodeinfo/${v}`, async (_req, reply) => {
      const stats = await instanceStats(ctx);
      reply.type(`application/json; profile="http://nodeinfo.diaspora.software/ns/schema/${v}#"`);
      return {
        version: v,
        software: { name: 'starling', version: STARLING_VERSION, ...(v === '2.1' ? { repository: 'https://starling.invalid/source' } : {}) },
        protocols: ['activitypub'],
        services: { outbound: [], inbound: [] },
        usage: { users: { total: stats.users, activeMonth: stats.users, activeHalfyear: stats.users }, localPosts: stats.statuses },
        openRegistrations: ctx.config.registrationsOpen,
        // megalodon (and others) pick the Mastodon API when the upstream is "mastodon".
        metadata: { nodeName: ctx.config.instanceTitle, upstream: { name: 'mastodon', version: MASTODON_COMPAT_VERSION } },
      };
    });
  }

  app.get('/health', async (_req, reply) => {
    // Reachable database: a trivial read. Deeper readiness checks come with /readyz.
    await ctx.db.selectFrom('accounts').select('id').limit(1).execute();
    reply.type('text/plain');
    return 'OK';
  });

  app.get('/api/v1/custom_emojis', async () => []);
  // Endpoints clients call at start-up for features Starling does not have yet: empty, not 404.
  for (const path of ['/api/v1/announcements', '/api/v1/filters', '/api/v2/filters', '/api/v1/lists', '/api/v1/conversations', '/api/v1/featured_tags']) {
    app.get(path, async () => []);
  }
  app.get('/api/v1/instance/rules', async () => []);
  app.get('/api/v1/instance/peers', async () => []);

  for (const kind of ['avatars', 'headers']) {
    app.get(`/${kind}/original/missing.png`, async (_req, reply) => {
      reply.type('image/png').header('Cache-Control', 'public, max-age=86400');
      return MISSING_PNG;
    });
  }
}
