import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/http/admission.js';

const busy = { utilisation: 0.95, delayMs: 5 };
const calm = { utilisation: 0.3, delayMs: 1 };

describe('admission', () => {
  it('admits everything while the loop is calm, and ignores one busy sample alone', () => {
    const a = new Admission({ targetUtilisation: 0.8, targetDelayMs: 50, random: () => 0.99 });
    a.update(calm);
    a.update(busy);
    a.update(calm);
    expect(a.fraction).toBe(1);
    expect(a.throttling).toBe(false);
    expect(Array.from({ length: 100 }, () => a.admit()).every(Boolean)).toBe(true);
  });

  it('shrinks by a quarter per busy sample after the second, down to the floor, and turns requests away by that share', () => {
    let r = 0;
    const a = new Admission({ targetUtilisation: 0.8, targetDelayMs: 50, floor: 0.1, random: () => (r = (r + 0.37) % 1) });
    a.update(busy);
    expect(a.fraction).toBe(1);
    a.update(busy);
    expect(a.fraction).toBe(0.75);
    a.update(busy);
    expect(a.fraction).toBeCloseTo(0.5625);
    for (let i = 0; i < 50; i++) a.update(busy);
    expect(a.fraction).toBe(0.1);
    expect(a.throttling).toBe(true);
    const admitted = Array.from({ length: 1000 }, () => a.admit()).filter(Boolean).length;
    expect(admitted).toBeGreaterThan(50);
    expect(admitted).toBeLessThan(200);
    expect(a.counts).toEqual({ admitted, refused: 1000 - admitted });
  });

  it('counts a long event-loop delay as busy even at low utilisation', () => {
    const a = new Admission({ targetUtilisation: 0.8, targetDelayMs: 50 });
    a.update({ utilisation: 0.2, delayMs: 400 });
    a.update({ utilisation: 0.2, delayMs: 400 });
    expect(a.fraction).toBe(0.75);
  });

  it('grows back by steps once calm, to all', () => {
    const a = new Admission({ targetUtilisation: 0.8, targetDelayMs: 50, step: 0.25, floor: 0.05 });
    for (let i = 0; i < 30; i++) a.update(busy);
    expect(a.fraction).toBe(0.05);
    a.update(calm);
    expect(a.fraction).toBeCloseTo(0.3);
    for (let i = 0; i < 4; i++) a.update(calm);
    expect(a.fraction).toBe(1);
    expect(a.throttling).toBe(false);
  });
});
