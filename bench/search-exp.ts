import { randomViewers, startNode } from './lib.js';
const node = await startNode(process.argv[2]!, { overrides: { pressure: { enabled: false } } });
const auth = await randomViewers(node, 5);
for (const q of ['coffee', 'coffee', 'the', 'a', 'e', 'a*', '#tag', 'xyz', 'the the the', 'OR', '"', '*', 'a OR b OR c OR d', 'great', 'g', 'https://x', '@a', 'from:me', 'is:reply']) {
  for (const type of ['statuses', 'accounts', 'hashtags', '']) {
    const t = performance.now();
    const res = await node.app.inject({ url: `/api/v2/search?q=${encodeURIComponent(q)}${type ? `&type=${type}` : ''}&limit=40`, headers: { authorization: auth[0] } });
    const ms = performance.now() - t;
    if (true) console.log(JSON.stringify(q), type || 'all', res.statusCode, ms.toFixed(1), 'ms', res.body.slice(0, 80));
  }
}
await node.close();
