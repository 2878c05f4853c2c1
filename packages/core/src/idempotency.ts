/**
 * The idempotency key of a scheduled slot: `<jobId>-<slot epoch ms>`. It is also the BullMQ job id,
 * and BullMQ job ids may not contain ':', so the key is built with '-' only.
 */
export function slotKey(jobId: string, slot: Date): string {
  if (jobId.includes(':')) throw new RangeError(`job id may not contain ':' (got "${jobId}")`);
  const ms = slot.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('slot must be a valid date');
  return `${jobId}-${ms}`;
}

/** Parses a key made by `slotKey`; null when the key is not of that shape. */
export function parseSlotKey(key: string): { jobId: string; slot: Date } | null {
  const m = /^(.+)-(\d+)$/.exec(key);
  if (!m || m[1] === undefined || m[2] === undefined) return null;
  return { jobId: m[1], slot: new Date(Number(m[2])) };
}
