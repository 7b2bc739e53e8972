/**
 * Input parsing with zod, shaped for what Mastodon clients send: form
 * bodies carry everything as strings, arrays arrive as `key[]`, booleans as
 * "true"/"1"/"on". A failed parse is a 422 (or 400 for a missing required
 * parameter) with Mastodon's error text; never a 500.
 */
import { z } from 'zod';
import { StarlingError } from '../domain/errors.js';
import { isId } from '../domain/ids.js';

/** "true", "1", "on", true → true; "false", "0", "off", "", false → false. */
export const zBool = z.preprocess((v) => {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (['true', '1', 'on', 't', 'yes'].includes(s)) return true;
    if (['false', '0', 'off', 'f', 'no', ''].includes(s)) return false;
  }
  return v;
}, z.boolean());

export const zId = z.string().refine(isId, { message: 'is not a valid id' });
export const zOptId = z.preprocess((v) => (v === '' ? undefined : v), zId.optional());

/** A single value that some clients send as an array of one. */
const single = (v: unknown) => (Array.isArray(v) && v.length === 1 ? v[0] : v);

export const zLimit = (def: number, max: number) =>
  z.preprocess(
    (v) => {
      v = single(v);
      if (v === undefined || v === '') return def;
      const n = typeof v === 'string' ? Number(v) : v;
      // Mastodon clamps an over-large limit rather than refusing it.
      return typeof n === 'number' && Number.isFinite(n) && n > max ? max : n;
    },
    z.number().int().min(1),
  );

/** Arrays sent as `ids[]=1&ids[]=2`, `ids=1`, or JSON arrays. */
export const zArray = <T extends z.ZodTypeAny>(item: T) =>
  z.preprocess((v) => (v === undefined ? undefined : Array.isArray(v) ? v : [v]), z.array(item));

export const PageQuery = z.object({
  max_id: zOptId,
  since_id: zOptId,
  min_id: zOptId,
  limit: zLimit(20, 40),
});
export type Page = z.infer<typeof PageQuery>;

export function parse<S extends z.ZodTypeAny>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input ?? {}, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.join('.');
  if (issue.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined) {
    throw new StarlingError('param_missing', `param is missing or the value is empty: ${field}`);
  }
  throw new StarlingError('validation', `Validation failed: ${field ? `${field} ` : ''}${issue.message}`);
}

/**
 * Normalises form and multipart bodies: `a[]` keys become arrays under `a`,
 * `a[b]` keys become nested objects (as Rails parses them), repeated keys become arrays.
 */
export function normaliseFormBody(input: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [rawKey, value] of Object.entries(input)) {
    const arrayKey = rawKey.endsWith('[]');
    const key = arrayKey ? rawKey.slice(0, -2) : rawKey;
    const nested = /^([^[\]]+)\[([^[\]]+)\]$/.exec(key);
    if (nested) {
      const obj = (out[nested[1]] ??= {}) as Record<string, unknown>;
      if (typeof obj === 'object' && obj !== null && !Array.isArray(obj)) obj[nested[2]] = value;
      continue;
    }
    if (arrayKey) out[key] = ([] as unknown[]).concat(out[key] ?? [], value);
    else out[key] = value;
  }
  return out;
}
