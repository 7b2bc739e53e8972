import { randomViewers, startNode } from './lib.js';
const node = await startNode(process.argv[2]!, { overrides: { pressure: { enabled: false } } });
const auth = await randomViewers(node, 200);
const path = process.argv[3] ?? '/api/v1/timelines/home';
const serve = async (n: number) => {
  for (let i = 0; i < n; i++) {
    const res = await node.app.inject({ url: path, headers: { authorization: auth[i % auth.length] } });
    if (res.statusCode !== 200) throw new Error(String(res.statusCode));
    await new Promise((r) => setImmediate(r));
  }
};
const N = Number(process.argv[4] ?? 500);
await serve(N);
const proto = Object.getPrototypeOf(node.database.sqlite.prepare('select 1'));
const stats = new Map<string, { n: number; ns: bigint; rows: number }>();
for (const m of ['all', 'run', 'get']) {
  const orig = proto[m];
  proto[m] = function (this: { source: string }, ...a: unknown[]) {
    const t = process.hrtime.bigint();
    const r = orig.apply(this, a);
    const d = process.hrtime.bigint() - t;
    const s = stats.get(this.source) ?? { n: 0, ns: 0n, rows: 0 };
    s.n++; s.ns += d; s.rows += Array.isArray(r) ? r.length : 0;
    stats.set(this.source, s);
    return r;
  };
}
const c = process.cpuUsage();
await serve(N);
const d = process.cpuUsage(c);
console.log('cpu µs/request', ((d.user + d.system) / N).toFixed(0));
let tot = 0n;
for (const s of stats.values()) tot += s.ns;
console.log('sqlite µs/request', (Number(tot) / 1000 / N).toFixed(0));
for (const [sql, s] of [...stats].sort((a, b) => Number(b[1].ns - a[1].ns)).slice(0, 8))
  console.log(`${(Number(s.ns) / 1000 / N).toFixed(0).padStart(5)} µs/req  ${(s.n / N).toFixed(2)} runs/req ${(s.rows / s.n).toFixed(1)} rows  ${sql.replace(/\s+/g, ' ').replace(/(\?, )+\?/g, '?…').slice(0, 600)}`);
await node.close();
