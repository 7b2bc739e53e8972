/**
 * Starling under a real Prometheus (Debian's `prometheus` and `promtool`, which
 * .ci/run installs): Prometheus scrapes a running node on loopback and answers
 * a Starling series through its HTTP query API; it loads the rules that
 * `starling ops rules` exports and evaluates them without error; `promtool`
 * accepts the rules and the config, and its rule unit tests show the alerts
 * fire on a fast burn, on a slow one only as a ticket, and not on tiny samples.
 *
 * Without the binaries this file fails (it does not skip): CI must run it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startTestServer, tempDir, eventually, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/starling.js');

function requireBinary(name: string): void {
  const r = spawnSync(name, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `\`${name}\` is not installed or does not run (${r.error?.message ?? `exit ${r.status}`}). ` +
        `This test needs Debian's prometheus package: sudo apt-get install -y prometheus (.ci/run installs it in CI).`,
    );
  }
}

/** Runs a command; resolves with its exit code and output instead of throwing. */
async function exec(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(cmd, args, { env: { PATH: process.env.PATH } });
    return { code: 0, ...r };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout, stderr: err.stderr };
  }
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

interface PromVector {
  metric: Record<string, string>;
  value: [number, string];
}

const dir = tempDir('starling-prometheus-');
let server: TestServer;
let prom: ChildProcess | undefined;
let promExited: Promise<void> | undefined;
let promLog = '';
let promUrl = '';
let rulesYaml = '';

async function query(q: string): Promise<PromVector[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { status: string; data: { result: PromVector[] }; error?: string };
  if (body.status !== 'success') throw new Error(`query ${q} failed: ${body.error}`);
  return body.data.result;
}

beforeAll(async () => {
  requireBinary('prometheus');
  requireBinary('promtool');

  const rules = await exec(process.execPath, [BIN, 'ops', 'rules']);
  expect(rules.code, rules.stderr).toBe(0);
  rulesYaml = rules.stdout;
  writeFileSync(join(dir.path, 'starling-rules.yml'), rulesYaml);

  server = await startTestServer();
  const target = new URL(server.url).host;
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir.path, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      '  - starling-rules.yml',
      'scrape_configs:',
      '  - job_name: starling',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  );
  prom = spawn(
    'prometheus',
    [
      `--config.file=${join(dir.path, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir.path, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  promExited = new Promise((res) => prom!.once('exit', () => res()));
  const keep = (d: Buffer) => (promLog = (promLog + d).slice(-20_000));
  prom.stdout!.on('data', keep);
  prom.stderr!.on('data', keep);
  try {
    await eventually(async () => prom!.exitCode === null && (await fetch(`${promUrl}/-/ready`)).ok, 30_000);
  } catch (err) {
    throw new Error(`prometheus did not become ready: ${(err as Error).message}\n${promLog}`);
  }
});

afterAll(async () => {
  if (prom?.pid && prom.exitCode === null && prom.signalCode === null) {
    process.kill(prom.pid, 'SIGTERM');
    const timer = setTimeout(() => prom?.pid && prom.exitCode === null && process.kill(prom.pid, 'SIGKILL'), 10_000);
    await promExited;
    clearTimeout(timer);
  }
  await server?.stop();
  dir.remove();
});

describe('Prometheus scraping Starling', () => {
  it('promtool accepts the exported rules and the scrape config', async () => {
    const rules = await exec('promtool', ['check', 'rules', join(dir.path, 'starling-rules.yml')]);
    expect(rules.code, `${rules.stdout}\n${rules.stderr}`).toBe(0);
    expect(rules.stdout).toMatch(/SUCCESS: \d+ rules found/);
    const config = await exec('promtool', ['check', 'config', join(dir.path, 'prometheus.yml')]);
    expect(config.code, `${config.stdout}\n${config.stderr}`).toBe(0);
  });

  it('reads a Starling series back through the query API, with our labels', async () => {
    // Wait for a first scrape, so the counters' increases below are seen by rate() and increase().
    await eventually(async () => (await query('up{job="starling"} == 1')).length === 1, 30_000);
    const hit = async (path: string, n: number) => {
      for (let i = 0; i < n; i++) expect((await fetch(`${server.url}${path}`)).status).toBeLessThan(500);
    };
    await hit('/api/v1/instance', 5);
    await hit('/healthz', 3);
    await new Promise((r) => setTimeout(r, 2500)); // at least two scrapes with the series in them
    await hit('/api/v1/instance', 25);

    const series = await eventually(async () => {
      const result = await query('starling_http_requests_total');
      const mine = result.find((s) => s.metric.route === '/api/v1/instance' && s.metric.method === 'GET' && s.metric.status === '200');
      return mine && Number(mine.value[1]) >= 30 ? { mine, result } : null;
    }, 30_000);
    expect(series.mine.metric).toMatchObject({ __name__: 'starling_http_requests_total', job: 'starling', instance: new URL(server.url).host, node: '0' });
    expect(series.result.some((s) => s.metric.route === '/healthz')).toBe(true);

    const duration = await query('starling_http_request_duration_seconds_bucket{route="/api/v1/instance",le="0.5"}');
    expect(duration.length).toBeGreaterThan(0);
  });

  it('loads the exported rules and evaluates every one without error; the SLO ratios are recorded', async () => {
    const ratios = await eventually(async () => {
      const a = await query('job:starling_slo_availability_errors:ratio_rate5m');
      const l = await query('job:starling_slo_latency_errors:ratio_rate5m');
      return a.length && l.length ? { a, l } : null;
    }, 30_000);
    expect(ratios.a[0].metric.job).toBe('starling');
    expect(Number(ratios.a[0].value[1])).toBe(0); // nothing failed
    expect(Number(ratios.l[0].value[1])).toBeGreaterThanOrEqual(0);
    expect(Number(ratios.l[0].value[1])).toBeLessThanOrEqual(1);

    const res = await fetch(`${promUrl}/api/v1/rules`);
    const body = (await res.json()) as { data: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] } };
    const all = body.data.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(24);
    await eventually(async () => {
      const r = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as typeof body;
      const bad = r.data.groups.flatMap((g) => g.rules).filter((x) => x.health !== 'ok');
      if (bad.length) throw new Error(bad.map((x) => `${x.name}: ${x.health} ${x.lastError ?? ''}`).join('; '));
      return true;
    }, 15_000);
    // In-process, the same node: the tracker saw the same API requests and nothing failing.
    const availability = server.app.slo.evaluate().find((s) => s.name === 'availability')!;
    expect(availability.alert).toBeNull();
    expect(availability.burnRates['5m']).toBe(0);
    expect(server.app.slo.counts().availability['5m'].requests).toBeGreaterThanOrEqual(30);
  });
});

describe('the exported alerts (promtool test rules)', () => {
  const base = 'job="starling",instance="a:9",node="0",method="GET",route="/api/v1/timelines/home"';
  const req = (status: string, values: string) => `      - series: 'starling_http_requests_total{${base},status="${status}"}'\n        values: '${values}'`;
  const bucket = (le: string, values: string) =>
    `      - series: 'starling_http_request_duration_seconds_bucket{${base},status="200",le="${le}"}'\n        values: '${values}'`;
  const count = (values: string) => `      - series: 'starling_http_request_duration_seconds_count{${base},status="200"}'\n        values: '${values}'`;
  const expr = (at: string, q: string, samples: string[]) =>
    [
      `      - eval_time: ${at}`,
      `        expr: '${q}'`,
      samples.length ? '        exp_samples:' : '        exp_samples: []',
      ...samples.map((l) => `          - labels: '${l}'\n            value: 1`),
    ].join('\n');
  const firing = (name: string, labels: string) => `ALERTS{alertname="${name}",alertstate="firing",${labels}}`;
  const avail = 'job="starling",slo="availability"';

  it('fire on a fast burn, ticket on a slow one, stay quiet on tiny samples and on few bad requests', async () => {
    const tests = [
      // Clean for an hour, then a third of requests fail: both fast and slow pairs page.
      [
        '  - interval: 1m',
        '    input_series:',
        req('200', '0+100x120'),
        req('503', '0x59 0+50x60'),
        '    promql_expr_test:',
        expr('55m', 'ALERTS', []),
        expr('70m', 'ALERTS{alertname="StarlingAvailabilityBurnRateFast"}', [
          firing('StarlingAvailabilityBurnRateFast', `${avail},severity="page",long_window="1h",short_window="5m"`),
        ]),
        expr('70m', 'ALERTS{alertname="StarlingAvailabilityBurnRateSlow"}', [
          firing('StarlingAvailabilityBurnRateSlow', `${avail},severity="page",long_window="6h",short_window="30m"`),
        ]),
        expr('70m', 'ALERTS{slo="latency"}', []),
      ],
      // 0.4% failing for 7 hours (burn 4): no page, a ticket.
      [
        '  - interval: 1m',
        '    input_series:',
        req('200', '0+996x420'),
        req('503', '0+4x420'),
        '    promql_expr_test:',
        expr('400m', 'ALERTS{severity="page"}', []),
        expr('400m', 'ALERTS{alertname="StarlingAvailabilityBurnRateTicket"}', [
          firing('StarlingAvailabilityBurnRateTicket', `${avail},severity="ticket",long_window="3d",short_window="6h"`),
        ]),
      ],
      // Every request fails, but there are 6 an hour: too few for the 5m, 30m and 1h windows, so no page.
      [
        '  - interval: 1m',
        '    input_series:',
        req('503', '0+0.1x180'),
        '    promql_expr_test:',
        expr('180m', 'ALERTS{severity="page"}', []),
        expr('180m', 'job:starling_slo_availability_errors:ratio_rate1h', []),
      ],
      // A quiet node, 3 requests a minute and one of them failing: the burn is huge everywhere, but 5 minutes hold
      // 5 errors, under the 10 a page needs, so the fast pair stays quiet; 30 minutes hold 30, and the slow pair pages.
      [
        '  - interval: 1m',
        '    input_series:',
        req('200', '0+2x90'),
        req('503', '0+1x90'),
        '    promql_expr_test:',
        expr('60m', 'ALERTS{alertname="StarlingAvailabilityBurnRateFast"}', []),
        expr('60m', 'ALERTS{alertname="StarlingAvailabilityBurnRateSlow"}', [
          firing('StarlingAvailabilityBurnRateSlow', `${avail},severity="page",long_window="6h",short_window="30m"`),
        ]),
      ],
      // Latency: after an hour half the requests take longer than 500 ms.
      [
        '  - interval: 1m',
        '    input_series:',
        req('200', '0+100x120'),
        bucket('0.5', '0+100x60 6050+50x59'),
        bucket('+Inf', '0+100x120'),
        count('0+100x120'),
        '    promql_expr_test:',
        expr('80m', 'ALERTS{alertname="StarlingLatencyBurnRateFast"}', [
          firing('StarlingLatencyBurnRateFast', 'job="starling",slo="latency",severity="page",long_window="1h",short_window="5m"'),
        ]),
        expr('80m', 'ALERTS{slo="availability"}', []),
      ],
      // A node that cannot be scraped for a minute; annotations render with their runbook link.
      [
        '  - interval: 1m',
        '    input_series:',
        "      - series: 'up{job=\"starling\",instance=\"a:9\"}'",
        "        values: '1x5 0x5'",
        '    alert_rule_test:',
        '      - eval_time: 8m',
        '        alertname: StarlingNodeDown',
        '        exp_alerts:',
        '          - exp_labels:',
        '              severity: page',
        '              job: starling',
        '              instance: "a:9"',
        '            exp_annotations:',
        '              summary: "Starling node a:9 is down"',
        '              description: "Prometheus has not been able to scrape a:9 (job starling) for 1 minute."',
        '              runbook_url: "docs/OPERATIONS.md#starlingnodedown"',
      ],
    ];
    const file = join(dir.path, 'starling-rules.test.yml');
    writeFileSync(file, ['rule_files:', '  - starling-rules.yml', 'evaluation_interval: 1m', 'tests:', ...tests.map((t) => t.join('\n')), ''].join('\n'));
    const r = await exec('promtool', ['test', 'rules', file]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  }, 120_000);
});
