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
await serve(2000);
const { Session } = await import('node:inspector/promises');
const s = new Session(); s.connect();
await s.post('Profiler.enable'); await s.post('Profiler.setSamplingInterval', { interval: 200 }); await s.post('Profiler.start');
const c = process.cpuUsage();
await serve(4000);
const d = process.cpuUsage(c);
const { profile } = await s.post('Profiler.stop');
(await import('node:fs')).writeFileSync('/tmp/home.cpuprofile', JSON.stringify(profile));
console.log('cpu µs/request', ((d.user + d.system) / 4000).toFixed(0));
await node.close();
