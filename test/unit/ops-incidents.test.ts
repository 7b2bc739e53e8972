/** Incident transitions driven by component states, and operator actions, with a fake clock. */
import { describe, expect, it } from 'vitest';
import { IncidentBook, incidentTitle, OpsInputError } from '../../src/ops/incidents.js';
import type { ComponentHealth } from '../../src/ops/components.js';
import { COMPONENTS, COMPONENT_NAMES, type ComponentId, type ComponentState } from '../../src/ops/model.js';

function health(states: Partial<Record<ComponentId, ComponentState>>, cause: 'failing' | 'slow' = 'failing'): ComponentHealth[] {
  return COMPONENTS.map((id) => {
    const status = states[id] ?? 'operational';
    return {
      id,
      name: COMPONENT_NAMES[id],
      status,
      since: new Date(0).toISOString(),
      updated_at: new Date(0).toISOString(),
      reason: status === 'operational' ? null : `${id} check failed`,
      cause: status === 'operational' ? null : cause,
    };
  });
}

function book(resolveAfterMs = 60_000) {
  let n = 0;
  return new IncidentBook({ newId: () => String(1_000_000_000_000_000_000n + BigInt(++n)), resolveAfterMs });
}

describe('automatic incidents', () => {
  it('open once per episode, grow, go to monitoring on recovery and resolve after a quiet period', () => {
    const b = book(60_000);
    expect(b.reconcile(health({}), 0)).toEqual([]);

    const opened = b.reconcile(health({ posting: 'degraded_performance' }), 10_000);
    expect(opened.map((e) => e.type)).toEqual(['incident.opened']);
    const i = opened[0].incident;
    expect(i).toMatchObject({ name: 'Posting is failing', status: 'investigating', impact: 'minor', source: 'auto', components: ['posting'] });
    expect(i.incident_updates[0]).toMatchObject({ status: 'investigating', author: 'system' });
    expect(i.incident_updates[0].body).toMatch(/Posting is slow or degraded \(posting check failed\)\. We are investigating\./);

    // The same state again: nothing new to say.
    expect(b.reconcile(health({ posting: 'degraded_performance' }), 20_000)).toEqual([]);

    // Worse, and a second component: one update on the same incident, impact raised.
    const worse = b.reconcile(health({ posting: 'major_outage', database: 'major_outage' }), 30_000);
    expect(worse.map((e) => e.type)).toEqual(['incident.updated']);
    expect(worse[0].incident).toMatchObject({ id: i.id, impact: 'critical', components: ['posting', 'database'], name: 'Posting and Database are failing' });
    expect(b.unresolved()).toHaveLength(1);

    // Everything back: monitoring, then resolved after the quiet period, not before.
    const mon = b.reconcile(health({}), 40_000);
    expect(mon.map((e) => [e.type, e.incident.status])).toEqual([['incident.updated', 'monitoring']]);
    expect(mon[0].update.body).toMatch(/recovered/);
    expect(b.reconcile(health({}), 99_000)).toEqual([]);
    const res = b.reconcile(health({}), 100_000);
    expect(res.map((e) => [e.type, e.incident.status])).toEqual([['incident.resolved', 'resolved']]);
    expect(res[0].incident.resolved_at).toBe(new Date(100_000).toISOString());
    expect(res[0].incident.incident_updates.map((u) => u.status)).toEqual(['resolved', 'monitoring', 'investigating', 'investigating']);

    // A new failure after resolution is a new episode.
    const again = b.reconcile(health({ search: 'partial_outage' }), 200_000);
    expect(again[0].type).toBe('incident.opened');
    expect(again[0].incident.id).not.toBe(i.id);
    expect(b.resolved(10).map((x) => x.id)).toEqual([i.id]);
  });

  it('goes back to investigating when the problem returns while monitoring', () => {
    const b = book();
    b.reconcile(health({ timelines: 'major_outage' }), 0);
    b.reconcile(health({}), 10_000);
    const back = b.reconcile(health({ timelines: 'degraded_performance' }), 20_000);
    expect(back.map((e) => [e.type, e.incident.status])).toEqual([['incident.updated', 'investigating']]);
    expect(back[0].update.body).toMatch(/come back/);
    expect(b.unresolved()).toHaveLength(1);
  });

  it('titles slowness as slowness', () => {
    const b = book();
    const [e] = b.reconcile(health({ timelines: 'degraded_performance' }, 'slow'), 0);
    expect(e.incident.name).toBe('Timelines is slow');
    expect(incidentTitle([{ id: 'posting', cause: 'failing' }, { id: 'search', cause: 'slow' }])).toBe('Posting and Search are failing');
    expect(incidentTitle(['api', 'posting', 'timelines', 'search'].map((id) => ({ id: id as ComponentId, cause: 'failing' as const })))).toBe(
      'API, Posting and 2 other components are failing',
    );
  });

  it('opens no incident for components under maintenance', () => {
    const b = book();
    expect(b.reconcile(health({ search: 'under_maintenance' }), 0)).toEqual([]);
  });

  it('keeps an operator status of "identified" while detection still sees the problem', () => {
    const b = book();
    const [e] = b.reconcile(health({ posting: 'degraded_performance' }), 0);
    b.update(e.incident.id, { status: 'identified', body: 'A bad deploy; rolling back.', author: 'ada' }, 5_000);
    const [u] = b.reconcile(health({ posting: 'major_outage' }), 10_000);
    expect(u.incident.status).toBe('identified');
    expect(u.incident.incident_updates.map((x) => x.author)).toEqual(['system', 'ada', 'system']);
    const [m] = b.reconcile(health({}), 20_000);
    expect(m.incident.status).toBe('monitoring');
  });
});

describe('operators', () => {
  it('create, update and resolve incidents; every update is kept with its time and author', () => {
    const b = book();
    const c = b.create({ title: 'Search is slow', body: 'Looking into it.', impact: 'minor', components: ['search'], author: 'ada' }, 1000);
    expect(c.type).toBe('incident.opened');
    expect(c.incident).toMatchObject({ source: 'operator', status: 'investigating', impact: 'minor', components: ['search'] });
    b.update(c.incident.id, { status: 'identified', body: 'An index is missing.', author: 'grace' }, 2000);
    const r = b.resolve(c.incident.id, { author: 'ada' }, 3000);
    expect(r.type).toBe('incident.resolved');
    expect(r.incident.incident_updates.map((u) => [u.status, u.author, u.created_at])).toEqual([
      ['resolved', 'ada', new Date(3000).toISOString()],
      ['identified', 'grace', new Date(2000).toISOString()],
      ['investigating', 'ada', new Date(1000).toISOString()],
    ]);
    expect(() => b.resolve(c.incident.id, { author: 'ada' }, 4000)).toThrow(OpsInputError);
    expect(() => b.update('123', { body: 'x', author: 'ada' }, 4000)).toThrow(/not found/i);
    expect(() => b.create({ title: '  ', body: 'x', author: 'ada' }, 0)).toThrow(OpsInputError);
    // Operator incidents are not touched by detection.
    expect(b.reconcile(health({}), 10_000)).toEqual([]);
    expect(b.dirtyIncidents.has(c.incident.id)).toBe(true);
  });

  it('schedules and cancels maintenance; alerts are silenced only when it covers every affected component', () => {
    const b = book();
    const m = b.scheduleMaintenance({ title: 'Database upgrade', components: ['database', 'search'], startsAt: new Date(1000).toISOString(), endsAt: new Date(5000).toISOString() }, 0);
    expect(b.coveredByMaintenance(['search'], 500)).toBe(false);
    expect(b.coveredByMaintenance(['search'], 2000)).toBe(true);
    expect(b.coveredByMaintenance(['search', 'posting'], 2000)).toBe(false);
    expect(b.coveredByMaintenance([], 2000)).toBe(false);
    expect(b.upcomingMaintenances(0).map((x) => x.id)).toEqual([m.id]);
    b.cancelMaintenance(m.id, 1500);
    expect(b.coveredByMaintenance(['search'], 2000)).toBe(false);
    expect(() => b.scheduleMaintenance({ title: 'x', components: ['api'], startsAt: new Date(5).toISOString(), endsAt: new Date(1).toISOString() }, 0)).toThrow(/end after/);
  });

  it('merges what another writer put in the database: the union of updates, the latest status', () => {
    const a = book();
    const [e] = a.reconcile(health({ posting: 'major_outage' }), 0);
    const mine = a.get(e.incident.id)!;
    const theirs = structuredClone(mine);
    theirs.updates.push({ id: '1999999999999999999', status: 'identified', body: 'From the CLI', author: 'ada', created_at: new Date(5000).toISOString() });
    theirs.status = 'identified';
    theirs.updatedAt = new Date(5000).toISOString();
    a.mergeIncident(theirs);
    expect(a.get(e.incident.id)!.status).toBe('identified');
    expect(a.get(e.incident.id)!.updates).toHaveLength(2);
    a.mergeIncident(theirs);
    expect(a.get(e.incident.id)!.updates).toHaveLength(2);
  });
});
