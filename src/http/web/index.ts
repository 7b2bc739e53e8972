/**
 * The web app (web/, built by `vite build web` into dist/web) served at `/`:
 * hashed files under /assets cached for a year, index.html always revalidated,
 * and any other GET that asks for HTML (outside the API, OAuth, status,
 * discovery, health, metrics and media paths) answered with index.html so the
 * app's own URLs (/@alice, /tags/news, /notifications) load on a reload. If the
 * app is not built, `/` says so and how to build it, instead of failing.
 *
 * Files are read once and kept in memory with their gzip and brotli forms (the
 * whole app is a few hundred kilobytes); a rebuild is noticed by the file's
 * modification time.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlibConstants, gzip } from 'node:zlib';
import type { AppContext } from '../../services/context.js';

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

/** Paths that belong to the server, never to the app: an unknown one is the API's 404, not index.html. */
export const SERVER_PATHS = /^\/(?:api|oauth|status|\.well-known|nodeinfo|health[^/]*|readyz|metrics|avatars|headers)(?:\/|$)/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.svg', '.txt', '.map', '.webmanifest']);

/** The app's page: scripts and connections only to this origin. Inline style attributes are React's `style`. */
export const APP_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; connect-src 'self'; font-src 'self'; " +
  "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/** dist/web beside the compiled server, whether this runs from src/ (tests, tsx) or dist/. */
export function defaultWebDir(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'web');
    dir = dirname(dir);
  }
  return resolve(import.meta.dirname, '../../../dist/web');
}

interface CachedFile {
  mtimeMs: number;
  size: number;
  body: Buffer;
  etag: string;
  type: string;
  gzip?: Promise<Buffer>;
  br?: Promise<Buffer>;
}

export function notBuiltPage(): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Starling</title>
<style>:root{color-scheme:light dark}body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}code{background:rgba(127,127,127,.15);padding:.1rem .3rem;border-radius:4px}</style></head>
<body>
<h1>Starling is running</h1>
<p>The web app isn't built on this server, so there is nothing to show here yet. Build it with:</p>
<p><code>npm run build</code> (or <code>npx vite build web</code>), then reload this page.</p>
<p>Mastodon apps work without it: point them at this server's address.</p>
</body>
</html>
`;
}

export async function webRoutes(app: FastifyInstance, opts: { ctx: AppContext; dir?: string }): Promise<void> {
  const root = resolve(opts.dir ?? defaultWebDir());
  const cache = new Map<string, CachedFile>();

  /** The file at a URL path inside the app's folder, or null (missing, a folder, or outside it). */
  function load(urlPath: string): CachedFile | null {
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return null;
    }
    if (decoded.includes('\0')) return null;
    const file = resolve(root, `.${decoded}`);
    if (!file.startsWith(root + sep)) return null;
    let st;
    try {
      st = statSync(file);
    } catch {
      return null;
    }
    if (!st.isFile()) return null;
    const hit = cache.get(file);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit;
    let body: Buffer;
    try {
      body = readFileSync(file);
    } catch {
      return null;
    }
    const entry: CachedFile = {
      mtimeMs: st.mtimeMs,
      size: st.size,
      body,
      etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`,
      type: TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    };
    cache.set(file, entry);
    return entry;
  }

  async function send(req: FastifyRequest, reply: FastifyReply, f: CachedFile, cacheControl: string, ext: string) {
    reply.header('Cache-Control', cacheControl).header('ETag', f.etag).header('Vary', 'Accept-Encoding').type(f.type);
    if (ext === '.html') reply.header('Content-Security-Policy', APP_CSP).header('X-Frame-Options', 'DENY');
    if (req.headers['if-none-match'] === f.etag) return reply.code(304).send();
    const accept = String(req.headers['accept-encoding'] ?? '');
    if (COMPRESSIBLE.has(ext) && f.body.length > 1024) {
      if (/\bbr\b/.test(accept)) {
        f.br ??= brotliAsync(f.body, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 9 } });
        return reply.header('Content-Encoding', 'br').send(await f.br);
      }
      if (/\bgzip\b/.test(accept)) {
        f.gzip ??= gzipAsync(f.body, { level: 9 });
        return reply.header('Content-Encoding', 'gzip').send(await f.gzip);
      }
    }
    return reply.send(f.body);
  }

  function acceptsHtml(req: FastifyRequest): boolean {
    const accept = String(req.headers.accept ?? '');
    return accept.includes('text/html') || accept.includes('application/xhtml+xml');
  }

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?', 1)[0];
    if (SERVER_PATHS.test(path)) return reply.callNotFound();
    const ext = extname(path).toLowerCase();
    if (path.startsWith('/assets/')) {
      const f = load(path);
      // Hashed names never change: a year, immutable.
      return f ? send(req, reply, f, 'public, max-age=31536000, immutable', ext) : reply.callNotFound();
    }
    if (path !== '/' && path !== '/index.html') {
      const f = load(path);
      if (f) return send(req, reply, f, 'public, max-age=3600', ext);
    }
    if (!acceptsHtml(req) && path !== '/') return reply.callNotFound();
    const index = load('/index.html');
    if (!index) {
      return reply.code(200).type('text/html; charset=utf-8').header('Cache-Control', 'no-cache').send(notBuiltPage());
    }
    // The app's shell: always revalidated, so a new build reaches people at once.
    return send(req, reply, index, 'no-cache', '.html');
  };

  // Static files are cheap and must load even when a person's API budget is spent.
  const config = { rateLimit: false as const };
  app.get('/', { config }, handler);
  app.get('/*', { config }, handler);
}
