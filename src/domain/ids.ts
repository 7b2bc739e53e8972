/**
 * Time-ordered 64-bit ids made on each node without coordination, rendered as
 * decimal strings as Mastodon does.
 *
 *   | 42 bits: ms since EPOCH | 10 bits: node id | 12 bits: sequence |
 *
 * The custom epoch keeps the ids far from the signed 64-bit limit (good until
 * ~2159) and, with ID_FLOOR added, every id has 19 digits until then, so ids
 * also sort correctly as strings (some clients compare them that way).
 */
export const EPOCH_MS = Date.UTC(2020, 0, 1);
const NODE_BITS = 10n;
const SEQ_BITS = 12n;
export const MAX_NODE_ID = (1 << Number(NODE_BITS)) - 1;
const MAX_SEQ = (1 << Number(SEQ_BITS)) - 1;
/** Added to every id so that all ids have the same number of digits. */
export const ID_FLOOR = 1_000_000_000_000_000_000n;

export interface IdGenerator {
  next(): string;
}

export function createIdGenerator(nodeId: number, now: () => number = Date.now): IdGenerator {
  if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > MAX_NODE_ID) {
    throw new RangeError(`node id must be an integer from 0 to ${MAX_NODE_ID}, got ${nodeId}`);
  }
  let lastMs = -1;
  let seq = 0;
  const node = BigInt(nodeId);
  return {
    next() {
      let ms = Math.max(now(), lastMs); // never go backwards when the clock does
      if (ms === lastMs) {
        seq = (seq + 1) & MAX_SEQ;
        // 4096 ids in one millisecond: borrow the next millisecond rather than repeat.
        if (seq === 0) ms = lastMs + 1;
      } else {
        seq = 0;
      }
      lastMs = ms;
      return (ID_FLOOR + ((BigInt(ms - EPOCH_MS) << (NODE_BITS + SEQ_BITS)) | (node << SEQ_BITS) | BigInt(seq))).toString();
    },
  };
}

/** The smallest id that could have been made at `ms`: for "since a time" cursors. */
export function idAtTime(ms: number): string {
  return (ID_FLOOR + (BigInt(Math.max(0, ms - EPOCH_MS)) << (NODE_BITS + SEQ_BITS))).toString();
}

export function timeOfId(id: string): number {
  return Number((BigInt(id) - ID_FLOOR) >> (NODE_BITS + SEQ_BITS)) + EPOCH_MS;
}

/** Ids arrive from clients as strings; anything that is not one of ours is rejected early. */
export function isId(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9]{1,19}$/.test(value) && BigInt(value) < 9_223_372_036_854_775_807n;
}
