import bcrypt from 'bcrypt';

/** bcrypt cost for stored passwords. */
export const BCRYPT_COST = 12;

/**
 * A password's bcrypt hash (`$2b$`). The native `bcrypt` package hashes on libuv's thread pool, off
 * the event loop, and faster than bcryptjs (cost 12: about 285 ms against 496 ms here).
 * @param cost 12 for stored passwords; tests and throwaway hashes may pass less.
 */
export function hashPassword(password: string, cost: number = BCRYPT_COST): Promise<string> {
  return bcrypt.hash(password, cost);
}

/**
 * Whether `password` matches a stored bcrypt hash. `$2a$` and `$2b$` hashes (bcryptjs wrote both,
 * older versions `$2a$`) verify as they are; `$2y$` (PHP's name for the same algorithm, which
 * bcryptjs accepted and native bcrypt does not) is read as `$2b$`. Anything else never matches.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const normalized = hash.startsWith('$2y$') ? `$2b$${hash.slice(4)}` : hash;
  try {
    return await bcrypt.compare(password, normalized);
  } catch {
    return false;
  }
}

/** The cost a bcrypt hash was made with. */
export function passwordCost(hash: string): number {
  return bcrypt.getRounds(hash);
}
