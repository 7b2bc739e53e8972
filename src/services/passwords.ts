/**
 * Password hashing with argon2id (@node-rs/argon2 ships its binary in the npm
 * package). Parameters follow OWASP's recommendation for argon2id:
 * 19 MiB of memory, 2 iterations, 1 degree of parallelism.
 */
import { hash, verify } from '@node-rs/argon2';

/** Algorithm.Argon2id; the package exports it as a const enum, which isolated modules cannot read. */
const ARGON2ID = 2;

const PARAMS = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

// A fixed hash to verify against when the account does not exist, so a login
// for an unknown e-mail takes as long as one with a wrong password.
let dummy: Promise<string> | null = null;

export async function verifyPassword(stored: string | null, password: string): Promise<boolean> {
  if (stored === null) {
    dummy ??= hashPassword('starling-dummy-password');
    await verify(await dummy, password).catch(() => false);
    return false;
  }
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}
