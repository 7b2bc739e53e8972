/**
 * The NATS event bus against a real 3-member nats-server cluster: events cross
 * nodes, a node keeps publishing and receiving when the member it is connected
 * to is killed, and a malformed message on the subject harms no one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { createNatsBus, type NatsBus } from '../../src/bus/nats.js';
import type { DomainEvent } from '../../src/bus/events.js';
import { needBinaries } from '../helpers/binaries.js';
import { startNatsCluster, type TestNatsCluster } from '../helpers/nats-cluster.js';
import { eventually } from '../helpers/server.js';

const skip = needBinaries(['nats-server']);

const statusEvent = (id: string): DomainEvent => ({
  type: 'status.created',
  status: { id, accountId: '1', visibility: 'public', inReplyToAccountId: null, reblogOfId: null, reblogOfAccountId: null, mentionIds: [], tags: [] },
});
const idOf = (e: DomainEvent) => (e.type === 'status.created' ? e.status.id : null);

describe.skipIf(skip)('NATS bus', () => {
  let nats: TestNatsCluster;
  const buses: NatsBus[] = [];
  const bus = (servers: string[], nodeId: number) => {
    const b = createNatsBus({ servers, nodeId, reconnectTimeWaitMs: 100, pingIntervalMs: 500 });
    buses.push(b);
    return b;
  };

  beforeAll(async () => {
    nats = await startNatsCluster(3);
  });
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await nats?.stop();
  });

  it('delivers an event published on one node to another node (through different cluster members), and once to its own node', async () => {
    const a = bus([nats.urls[0]], 1);
    const b = bus([nats.urls[1]], 2);
    await Promise.all([a.ready, b.ready]);
    expect(a.connected && b.connected).toBe(true);
    const onA: DomainEvent[] = [];
    const onB: DomainEvent[] = [];
    a.subscribe((e) => onA.push(e));
    b.subscribe((e) => onB.push(e));
    // The subscription reaches the other members through routes shortly after connecting: publish until it arrives.
    let n = 0;
    await eventually(async () => {
      a.publish(statusEvent(`warm-${n++}`));
      return onB.length > 0;
    }, 10_000);
    a.publish(statusEvent('from-a'));
    b.publish(statusEvent('from-b'));
    await eventually(async () => onB.some((e) => idOf(e) === 'from-a') && onA.some((e) => idOf(e) === 'from-b'));
    // Own events are delivered locally, not echoed back by NATS as well: exactly once each.
    await new Promise((r) => setTimeout(r, 200));
    expect(onA.filter((e) => idOf(e) === 'from-a')).toHaveLength(1);
    expect(onB.filter((e) => idOf(e) === 'from-a')).toHaveLength(1);
    expect(onB.filter((e) => idOf(e) === 'from-b')).toHaveLength(1);
    expect(b.stats.received).toBeGreaterThan(0);
  });

  it('ignores malformed and foreign messages on the subject', async () => {
    const b = bus([nats.urls[2]], 3);
    await b.ready;
    const got: DomainEvent[] = [];
    b.subscribe((e) => got.push(e));
    const raw = await connect({ servers: nats.urls[0] });
    try {
      await eventually(async () => {
        raw.publish('starling.events.status.created', Buffer.from('not json'));
        raw.publish('starling.events.x', Buffer.from(JSON.stringify({ v: 1, node: 9, event: { type: 'bogus' } })));
        raw.publish('starling.events.status.created', Buffer.from(JSON.stringify({ v: 1, node: 9, event: statusEvent('raw-ok') })));
        await raw.flush();
        return got.some((e) => idOf(e) === 'raw-ok');
      }, 10_000);
    } finally {
      await raw.close();
    }
    expect(b.stats.malformed).toBeGreaterThanOrEqual(2);
    expect(got.every((e) => e.type === 'status.created')).toBe(true);
  });

  it('keeps working through the other members when the member a node is connected to is killed', async () => {
    const a = bus(nats.urls, 4);
    const b = bus(nats.urls, 5);
    await Promise.all([a.ready, b.ready]);
    const onB: DomainEvent[] = [];
    b.subscribe((e) => onB.push(e));
    let n = 0;
    await eventually(async () => {
      a.publish(statusEvent(`before-${n++}`));
      return onB.length > 0;
    }, 10_000);
    // Kill the member A is on (and, if different, leave B's alone): A must move to a survivor.
    const port = Number(a.server!.split(':').pop());
    const index = nats.members.findIndex((m) => m.clientPort === port);
    expect(index).toBeGreaterThanOrEqual(0);
    await nats.kill(index);
    const after: string[] = [];
    await eventually(async () => {
      const id = `after-${n++}`;
      after.push(id);
      a.publish(statusEvent(id));
      return onB.some((e) => after.includes(idOf(e) ?? ''));
    }, 20_000);
    expect(a.connected).toBe(true);
    expect(Number(a.server!.split(':').pop())).not.toBe(port);
  });
});
