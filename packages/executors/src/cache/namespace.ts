/** `<keyPrefix><region>:` — the start of every key of a region. */
export function regionNamespace(keyPrefix: string, region: string): string {
  return `${keyPrefix}${region}:`;
}

/** A SCAN MATCH pattern for exactly the keys that start with `prefix` (its glob characters escaped). */
export function scanPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
}

/**
 * The forbidden prefix that `namespace` overlaps, or null. Overlap goes both ways: a namespace that
 * starts with a forbidden prefix (`chronos:x:` under `chronos:`) names its keys directly, and a
 * namespace that a forbidden prefix starts with (`app:` for `app:queues:`) would sweep its keys up in
 * a region-wide SCAN.
 */
export function forbiddenOverlap(namespace: string, forbiddenPrefixes: readonly string[]): string | null {
  for (const prefix of forbiddenPrefixes) {
    if (namespace.startsWith(prefix) || prefix.startsWith(namespace)) return prefix;
  }
  return null;
}
