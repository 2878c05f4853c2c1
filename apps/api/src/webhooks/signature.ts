import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A delivery whose timestamp is further than this from the server clock is refused (replays, skew). */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;

/** A new webhook secret: 32 random bytes, base64url, with a recognisable prefix. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/**
 * The signature a sender puts in `X-Chronos-Signature`: hex HMAC-SHA256 keyed with the secret (its
 * UTF-8 bytes, prefix included) over `<timestamp>.<raw body>`.
 */
export function signWebhook(secret: string, timestamp: string, body: Buffer | string): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The 32 digest bytes of an `X-Chronos-Signature` value (`<hex>` or `sha256=<hex>`), or null when malformed. */
export function parseSignature(header: string | undefined): Buffer | null {
  const hex = header?.trim().replace(/^sha256=/i, '');
  return hex && /^[0-9a-fA-F]{64}$/.test(hex) ? Buffer.from(hex, 'hex') : null;
}

/** The unix seconds of an `X-Chronos-Timestamp` value, or null when it is not a plain integer. */
export function parseTimestamp(header: string | undefined): number | null {
  const value = header?.trim();
  return value && /^\d{1,12}$/.test(value) ? Number(value) : null;
}

/** Whether `timestamp` (unix seconds) lies within the tolerance of `now`, either side. */
export function timestampIsFresh(timestamp: number, now: Date): boolean {
  return Math.abs(now.getTime() / 1000 - timestamp) <= TIMESTAMP_TOLERANCE_SECONDS;
}

/**
 * Whether `signature` is the HMAC of `timestamp.body` under any of `secrets` (the current one and,
 * during a rotation's grace period, the previous one). Every candidate is compared in constant time.
 */
export function signatureMatches(
  signature: Buffer,
  secrets: readonly string[],
  timestamp: string,
  body: Buffer,
): boolean {
  let matched = false;
  for (const secret of secrets) {
    const expected = Buffer.from(signWebhook(secret, timestamp, body), 'hex');
    if (timingSafeEqual(expected, signature)) matched = true;
  }
  return matched;
}
