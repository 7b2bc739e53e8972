import { startTestServer } from '../test/helpers/server.js';
const s = await startTestServer({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 5 }, logLevel: 'silent' });
const show = (label: string) => {
  const sum = s.ops.summary();
  console.log(label, 'ticks', s.ops.tickCount, sum.status.indicator, sum.components.map((c) => `${c.id}:${c.status}`).join(' '), sum.incidents.map((i) => `${i.id}:${i.status}`).join(','));
};
await new Promise((r) => setTimeout(r, 1500));
show('before');
s.database.sqlite.close();
for (let i = 0; i < 6; i++) { await new Promise((r) => setTimeout(r, 500)); show('fault'); }
console.log(s.ops.probeResults().map((p) => `${p.probe} ${p.ok} ${p.detail}`).join('\n'));
s.database.reopen();
for (let i = 0; i < 16; i++) { await new Promise((r) => setTimeout(r, 500)); show('fixed'); }
console.log(s.ops.probeResults().map((p) => `${p.probe} ${p.ok} ${p.detail}`).join('\n'));
const t = Date.now();
await s.stop();
console.log('stopped in', Date.now() - t);
process.exit(0);
