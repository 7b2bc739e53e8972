import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { it } from 'vitest';
import { eventually, startTestServer } from '../test/helpers/server.js';
const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../bin/starling.js');
it('timing', async () => {
  const server = await startTestServer({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 10 } });
  try {
    let t = Date.now();
    const r = await run(process.execPath, [BIN, 'incident', 'create', '--title', 'x', '--body', 'y', '--data-dir', server.dataDir]);
    console.log('cli', Date.now() - t, r.stdout.trim());
    const id = /created incident (\d+)/.exec(r.stdout)![1];
    t = Date.now();
    await eventually(async () => server.ops.summary().incidents.find((i) => i.id === id), 20_000);
    console.log('synced', Date.now() - t, 'ticks', server.ops.tickCount);
  } finally { await server.stop(); }
}, 60_000);
