import { describe, expect, it } from 'vitest';
import { createIdGenerator, idAtTime, timeOfId, isId, EPOCH_MS } from '../../src/domain/ids.js';

describe('ids', () => {
  it('are time-ordered, unique, and 19 digits', () => {
    let t = EPOCH_MS + 86_400_000 * 2500;
    const gen = createIdGenerator(7, () => t);
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      if (i % 1000 === 0) t += 1;
      ids.push(gen.next());
    }
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < ids.length; i++) expect(BigInt(ids[i]) > BigInt(ids[i - 1])).toBe(true);
    expect(ids.every((id) => id.length === 19)).toBe(true);
    // String order is numeric order, because the length is fixed.
    expect([...ids].sort()).toEqual(ids);
  });

  it('borrows the next millisecond when 4096 ids are made in one', () => {
    const gen = createIdGenerator(1, () => EPOCH_MS + 1000);
    const ids = Array.from({ length: 5000 }, () => gen.next());
    expect(new Set(ids).size).toBe(5000);
    expect(timeOfId(ids[4999])).toBe(EPOCH_MS + 1001);
  });

  it('never goes backwards when the clock does', () => {
    let t = EPOCH_MS + 5000;
    const gen = createIdGenerator(1, () => t);
    const a = gen.next();
    t -= 2000;
    const b = gen.next();
    expect(BigInt(b) > BigInt(a)).toBe(true);
  });

  it('differ between nodes at the same instant', () => {
    const a = createIdGenerator(1, () => EPOCH_MS + 10).next();
    const b = createIdGenerator(2, () => EPOCH_MS + 10).next();
    expect(a).not.toBe(b);
    expect(timeOfId(a)).toBe(timeOfId(b));
  });

  it('rejects node ids out of range', () => {
    expect(() => createIdGenerator(1024)).toThrow(RangeError);
    expect(() => createIdGenerator(-1)).toThrow(RangeError);
  });

  it('maps times to cursors and validates client ids', () => {
    const ms = EPOCH_MS + 123_456;
    expect(timeOfId(idAtTime(ms))).toBe(ms);
    expect(isId('1234')).toBe(true);
    expect(isId('abc')).toBe(false);
    expect(isId('-1')).toBe(false);
    expect(isId('99999999999999999999')).toBe(false);
    expect(isId(12)).toBe(false);
  });
});
