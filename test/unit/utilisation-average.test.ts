import { describe, expect, it } from 'vitest';
import { UtilisationAverage } from '../../src/http/utilisation-average.js';

describe('UtilisationAverage', () => {
  it('moves 30 % of the way per 100 ms sample with a 280 ms time constant, as the sampler always did', () => {
    const avg = new UtilisationAverage(280);
    avg.add(1, 100);
    expect(avg.value).toBeCloseTo(0.3, 2);
    avg.add(1, 100);
    expect(avg.value).toBeCloseTo(0.51, 2);
  });

  it('weights each sample by the time it covers, so uneven samples average to what the loop did', () => {
    // Busy 60 ms of every 70, sampled by a timer that fires late after each hold: 60 ms busy, then 10 ms idle.
    // Weighted alike (0.7 · old + 0.3 · new) these samples would settle near 0.41, under the overloaded threshold.
    const avg = new UtilisationAverage(280);
    for (let i = 0; i < 50; i++) {
      avg.add(1, 60);
      avg.add(0, 10);
    }
    expect(avg.value).toBeGreaterThan(0.8);
    expect(avg.value).toBeLessThan(0.9);
  });

  it('forgets: a long idle span brings it back near zero, and a zero-length sample changes nothing', () => {
    const avg = new UtilisationAverage(280);
    for (let i = 0; i < 20; i++) avg.add(1, 100);
    expect(avg.value).toBeGreaterThan(0.99);
    avg.add(0.5, 0);
    expect(avg.value).toBeGreaterThan(0.99);
    avg.add(0, 2000);
    expect(avg.value).toBeLessThan(0.01);
  });
});
