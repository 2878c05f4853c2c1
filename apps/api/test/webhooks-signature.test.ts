import { describe, expect, it } from 'vitest';
import {
  parseSignature,
  parseTimestamp,
  signWebhook,
  signatureMatches,
  timestampIsFresh,
} from '../src/webhooks/signature.ts';

const VECTOR = '38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789';

describe('webhook signatures', () => {
  const body = Buffer.from('{"a":1}');

  it('are hex HMAC-SHA256 of "<timestamp>.<raw body>" (same as openssl)', () => {
    // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
    expect(signWebhook('whsec_test', '1700000000', body)).toBe(VECTOR);
  });

  it('parse as hex, with or without sha256=, any case, and nothing else', () => {
    expect(parseSignature(VECTOR)?.toString('hex')).toBe(VECTOR);
    expect(parseSignature(`sha256=${VECTOR.toUpperCase()}`)?.toString('hex')).toBe(VECTOR);
    for (const bad of [
      undefined,
      '',
      'sha256=',
      VECTOR.slice(1),
      `${VECTOR}00`,
      `sha1=${VECTOR}`,
      'z'.repeat(64),
    ])
      expect(parseSignature(bad), String(bad)).toBeNull();
  });

  it('match the current or the previous secret, not a tampered body or timestamp', () => {
    const sig = parseSignature(VECTOR) as Buffer;
    expect(signatureMatches(sig, ['whsec_test'], '1700000000', body)).toBe(true);
    expect(signatureMatches(sig, ['whsec_new', 'whsec_test'], '1700000000', body)).toBe(true);
    expect(signatureMatches(sig, ['whsec_new'], '1700000000', body)).toBe(false);
    expect(signatureMatches(sig, ['whsec_test'], '1700000001', body)).toBe(false);
    expect(signatureMatches(sig, ['whsec_test'], '1700000000', Buffer.from('{"a":2}'))).toBe(false);
  });

  it('take timestamps as unix seconds within 5 minutes either side', () => {
    const now = new Date(1_700_000_000_000);
    expect(parseTimestamp(' 1700000000 ')).toBe(1_700_000_000);
    for (const bad of [undefined, '', '1.5', '-1', '2026-01-01T00:00:00Z', '1e9'])
      expect(parseTimestamp(bad), String(bad)).toBeNull();
    expect(timestampIsFresh(1_700_000_300, now)).toBe(true);
    expect(timestampIsFresh(1_699_999_700, now)).toBe(true);
    expect(timestampIsFresh(1_700_000_301, now)).toBe(false);
    expect(timestampIsFresh(1_699_999_699, now)).toBe(false);
  });
});
