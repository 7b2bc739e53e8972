import { startTestServer } from '../test/helpers/server.js';
const s = await startTestServer({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 5 }, logLevel: 'silent' });
const show = (label: string) => {
  const sum = s.ops.summary();
  console.log(label, 'ticks', s.ops.tickCount, sum.status.indicator, sum.components.filter(c=>c.status!=='operational').map((c) => `${c.id}:${c.status}`).join(' '), sum.incidents.map((i) => `${i.id}:${i.status}`).join(','));
};
const inflight = new Map<any, string>();
s.app.server.on('request', (req: any, res: any) => { inflight.set(req, req.method + ' ' + req.url + ' @' + Date.now()); res.on('close', () => inflight.delete(req)); });
await new Promise((r) => setTimeout(r, 1500));
s.database.sqlite.close();
for (let i = 0; i < 4; i++) { await new Promise((r) => setTimeout(r, 500)); show('fault'); }
s.database.reopen();
for (let i = 0; i < 8; i++) { await new Promise((r) => setTimeout(r, 500)); show('fixed'); }
console.log('inflight', [...inflight.values()]);
let t = Date.now();
await s.ops.stop(); console.log('ops stopped', Date.now() - t); t = Date.now();
const r = await Promise.race([s.app.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('timeout'), 5000))]); console.log('app', r, Date.now() - t); t = Date.now();
const hs = (process as any)._getActiveHandles(); console.log(hs.map((h: any) => h.constructor.name + (h.remotePort ? ':' + h.localPort + '->' + h.remotePort : '') + (h._idleTimeout ? ' idle' + h._idleTimeout : '')));
console.log('connections', await new Promise((r) => s.app.server.getConnections((e, n) => r(n))));
await s.worker.stop(); console.log('worker stopped', Date.now() - t); t = Date.now();
await s.ctx.bus.close();
await s.database.close(); console.log('db closed', Date.now() - t);
process.exit(0);
