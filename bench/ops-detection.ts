/**
 * Fault → incident, measured with the default ops settings (probes every 10 s).
 *
 *   npx tsx bench/ops-detection.ts [--runs 5] [--no-recovery]
 *
 * Each run starts a fresh node (embedded SQLite, a temporary data folder) with
 * an alert webhook on 127.0.0.1, waits until its first probe round reports
 * every component operational, waits a random 0–10 s (so the fault lands at
 * a random point of the probe cycle), then closes the node's database
 * connection for real and measures, from that moment:
 *   - readyz   → /readyz answers 503,
 *   - incident → the ops engine has an open automatic incident (what the status page shows),
 *   - alert    → the webhook has received the signed "incident.opened" alert.
 * The first run also reopens the database and measures recovery → monitoring → resolved.
 */
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, 'no-recovery': { type: 'boolean', default: false } } });
const runs = Math.max(1, Number(values.runs));

const alerts: { at: number; event: string }[] = [];
const hook = createServer((req, res) => {
  let raw = '';
  req.on('data', (d) => (raw += d));
  req.on('end', () => {
    try {
      alerts.push({ at: Date.now(), event: (JSON.parse(raw) as { event: string }).event });
    } catch {
      /* ignore */
    }
    res.writeHead(204).end();
  });
});
await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
const hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(check: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs: number): Promise<T | null> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await check();
    if (v) return v;
    await sleep(25);
  }
  return null;
}

interface Result {
  run: number;
  phaseMs: number;
  readyzMs: number | null;
  incidentMs: number | null;
  alertMs: number | null;
  recovery?: { monitoringMs: number | null; resolvedMs: number | null };
}
const results: Result[] = [];

for (let run = 1; run <= runs; run++) {
  const dir = mkdtempSync(join(tmpdir(), 'starling-detect-'));
  const config = loadConfig({
    env: {},
    file: undefined,
    overrides: { host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', rateLimit: { max: 0, windowSeconds: 60 }, ops: { alertWebhooks: [{ url: hookUrl, kind: 'json', secret: 'bench' }] } },
  });
  const server = await startServer(config);
  try {
    const healthy = await until(() => {
      const s = server.ops.summary();
      return !s.freshness.stale && s.status.indicator === 'none' && s.components.every((c) => c.status === 'operational');
    }, 30_000);
    if (!healthy) throw new Error('the node never reported healthy');
    const phaseMs = Math.round(Math.random() * config.ops.probeIntervalSeconds * 1000);
    await sleep(phaseMs);
    alerts.length = 0;

    const faultAt = Date.now();
    server.database.sqlite.close();
    const result: Result = { run, phaseMs, readyzMs: null, incidentMs: null, alertMs: null };
    const readyz = until(async () => (await fetch(`${server.url}/readyz`)).status === 503 && Date.now(), 60_000);
    const incident = until(() => server.ops.summary().incidents.find((i) => i.source === 'auto'), 60_000);
    const alert = until(() => alerts.find((a) => a.event === 'incident.opened'), 60_000);
    const [r, i, a] = await Promise.all([readyz, incident, alert]);
    result.readyzMs = r ? r - faultAt : null;
    result.incidentMs = i ? Date.parse(i.created_at) - faultAt : null;
    result.alertMs = a ? a.at - faultAt : null;

    if (run === 1 && !values['no-recovery'] && i) {
      const fixedAt = Date.now();
      server.database.reopen();
      const monitoring = await until(() => server.ops.summary().incidents.find((x) => x.id === i.id && x.status === 'monitoring'), 120_000);
      const resolved = await until(() => server.ops.pastIncidents(5).find((x) => x.id === i.id), 180_000);
      result.recovery = {
        monitoringMs: monitoring ? Date.parse(monitoring.updated_at) - fixedAt : null,
        resolvedMs: resolved?.resolved_at ? Date.parse(resolved.resolved_at) - fixedAt : null,
      };
    }
    results.push(result);
    console.log(JSON.stringify(result));
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
hook.close();

const stat = (xs: (number | null)[]) => {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  return v.length ? { min: v[0], median: v[Math.floor(v.length / 2)], max: v[v.length - 1], n: v.length } : null;
};
console.log(
  JSON.stringify(
    {
      probeIntervalSeconds: 10,
      runs,
      readyzMs: stat(results.map((r) => r.readyzMs)),
      incidentMs: stat(results.map((r) => r.incidentMs)),
      alertMs: stat(results.map((r) => r.alertMs)),
      recovery: results[0]?.recovery ?? null,
    },
    null,
    2,
  ),
);
