/**
 * Idempotency-Key: a retried post never duplicates, whether the retry comes
 * at once, concurrently with the first attempt, or after a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, createUser, tempDir, type TestServer, type TestUser } from '../helpers/server.js';

let dir: ReturnType<typeof tempDir>;
let server: TestServer;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  dir = tempDir();
  server = await startTestServer({}, dir.path);
  alice = await createUser(server.url, 'alice');
  bob = await createUser(server.url, 'bob');
});
afterAll(async () => {
  await server?.stop();
  dir?.remove();
});

function post(user: TestUser, key: string | null, text: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' };
  if (key !== null) headers['idempotency-key'] = key;
  return fetch(`${server.url}/api/v1/statuses`, { method: 'POST', headers, body: JSON.stringify({ status: text }) });
}

async function countStatuses(accountId: string): Promise<number> {
  const row = await server.ctx.db.selectFrom('statuses').select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', accountId).executeTakeFirstOrThrow();
  return Number(row.n);
}

describe('Idempotency-Key', () => {
  it('returns the same status for the same key sent twice', async () => {
    const before = await countStatuses(alice.id);
    const first = await alice.client.v1.statuses.create({ status: 'once' }, { requestInit: { headers: { 'Idempotency-Key': 'key-sequential' } } });
    const second = await alice.client.v1.statuses.create({ status: 'once' }, { requestInit: { headers: { 'Idempotency-Key': 'key-sequential' } } });
    expect(second.id).toBe(first.id);
    expect(await countStatuses(alice.id)).toBe(before + 1);
  });

  it('creates one status when many requests with the same key arrive at once', async () => {
    const before = await countStatuses(alice.id);
    const responses = await Promise.all(Array.from({ length: 12 }, () => post(alice, 'key-concurrent', 'concurrent')));
    expect(responses.map((r) => r.status)).toEqual(Array(12).fill(200));
    const ids = await Promise.all(responses.map(async (r) => ((await r.json()) as { id: string }).id));
    expect(new Set(ids).size).toBe(1);
    expect(await countStatuses(alice.id)).toBe(before + 1);
  });

  it('scopes keys per account and keeps different keys apart', async () => {
    const a = (await (await post(alice, 'shared-key', 'from alice')).json()) as { id: string; account: { id: string } };
    const b = (await (await post(bob, 'shared-key', 'from bob')).json()) as { id: string; account: { id: string } };
    expect(a.id).not.toBe(b.id);
    expect(b.account.id).toBe(bob.id);
    const c = (await (await post(alice, 'another-key', 'from alice')).json()) as { id: string };
    expect(c.id).not.toBe(a.id);
    const d = (await (await post(alice, null, 'no key')).json()) as { id: string };
    const e = (await (await post(alice, null, 'no key')).json()) as { id: string };
    expect(d.id).not.toBe(e.id);
  });

  it('returns the same status after a restart', async () => {
    const first = (await (await post(alice, 'key-restart', 'before restart')).json()) as { id: string };
    await server.close();
    server = await startTestServer({}, dir.path);
    const before = await countStatuses(alice.id);
    const retry = await post(alice, 'key-restart', 'before restart');
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as { id: string }).id).toBe(first.id);
    expect(await countStatuses(alice.id)).toBe(before);
  });
});
