import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  SecretError,
  createSecretBox,
  generateEncryptionKey,
  keyIdOf,
  parseEncryptionKey,
  secretKeyId,
  type SecretBox,
} from '../../src/index.ts';

const ROW = '01JVAR0000000000000000000A';
const PLAINTEXT = 'correct horse battery staple ✓';

function key(): { id: string; key: Buffer } {
  const material = randomBytes(32);
  return { id: keyIdOf(material), key: material };
}

function secretErrorOf(fn: () => unknown): SecretError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SecretError) return error;
    throw error;
  }
  throw new Error('expected a SecretError');
}

/** Flips one bit of the decoded bytes in field `index` (2 = nonce, 3 = ciphertext+tag). */
function tamper(stored: string, index: 2 | 3, byte: number): string {
  const parts = stored.split(':');
  const bytes = Buffer.from(parts[index] ?? '', 'base64url');
  const at = byte < 0 ? bytes.length + byte : byte;
  bytes[at] = (bytes[at] ?? 0) ^ 0x01;
  parts[index] = bytes.toString('base64url');
  return parts.join(':');
}

describe('createSecretBox', () => {
  const k1 = key();
  const box = createSecretBox({ current: k1 });

  it('round-trips, including the empty string and non-ASCII text', () => {
    for (const text of [PLAINTEXT, '', 'x'.repeat(10_000)]) {
      expect(box.decrypt(box.encrypt(text, ROW), ROW)).toBe(text);
    }
  });

  it('writes v1:<keyId>:<nonce>:<ciphertext+tag> with a 12-byte nonce', () => {
    const stored = box.encrypt(PLAINTEXT, ROW);
    const [version, keyId, nonce, sealed, ...rest] = stored.split(':');
    expect(rest).toEqual([]);
    expect(version).toBe('v1');
    expect(keyId).toBe(k1.id);
    expect(box.currentKeyId).toBe(k1.id);
    expect(secretKeyId(stored)).toBe(k1.id);
    expect(Buffer.from(nonce ?? '', 'base64url')).toHaveLength(12);
    expect(Buffer.from(sealed ?? '', 'base64url')).toHaveLength(Buffer.byteLength(PLAINTEXT) + 16);
    expect(stored).toMatch(/^v1:[0-9a-f]{8}:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
    expect(stored).not.toContain(PLAINTEXT);
  });

  it('uses a fresh nonce each time', () => {
    const a = box.encrypt(PLAINTEXT, ROW);
    const b = box.encrypt(PLAINTEXT, ROW);
    expect(a).not.toBe(b);
    expect(a.split(':')[2]).not.toBe(b.split(':')[2]);
  });

  it('binds the ciphertext to its row: another AAD fails', () => {
    const stored = box.encrypt(PLAINTEXT, ROW);
    const e = secretErrorOf(() => box.decrypt(stored, '01JVAR0000000000000000000B'));
    expect(e.code).toBe('SECRET_DECRYPT_FAILED');
    expect(e.retryable).toBe(false);
    expect(e.keyId).toBe(k1.id);
  });

  it('refuses an empty AAD', () => {
    expect(() => box.encrypt(PLAINTEXT, '')).toThrow(TypeError);
    expect(() => box.decrypt(box.encrypt(PLAINTEXT, ROW), '')).toThrow(TypeError);
  });

  const stored = box.encrypt(PLAINTEXT, ROW);
  const tampered: { name: string; value: string }[] = [
    { name: 'a flipped ciphertext bit', value: tamper(stored, 3, 0) },
    { name: 'a flipped tag bit', value: tamper(stored, 3, -1) },
    { name: 'a flipped nonce bit', value: tamper(stored, 2, 5) },
    { name: 'a truncated tag', value: stored.slice(0, -4) },
    {
      name: 'a non-canonical base64 ending',
      value: `${stored.slice(0, -1)}${stored.endsWith('A') ? 'B' : 'A'}`,
    },
    { name: 'a short nonce', value: stored.replace(/^(v1:[^:]+:)[^:]+/, '$1AAAA') },
    { name: 'no ciphertext at all', value: stored.replace(/:[^:]+$/, ':') },
    { name: 'another version', value: stored.replace(/^v1:/, 'v2:') },
    { name: 'an extra field', value: `${stored}:x` },
    { name: 'non-base64 data', value: stored.replace(/:[^:]+$/, ':!!!!') },
    { name: 'plain text', value: PLAINTEXT },
  ];
  it.each(tampered)('detects $name', ({ value }) => {
    const e = secretErrorOf(() => box.decrypt(value, ROW));
    expect(e.code).toBe('SECRET_DECRYPT_FAILED');
    expect(e.message).not.toContain(PLAINTEXT);
    expect(e.message).not.toContain(k1.key.toString('hex'));
    expect(e.message).not.toContain(k1.key.toString('base64'));
  });

  it('names an unknown key id without revealing anything else', () => {
    const other = createSecretBox({ current: key() });
    const foreign = other.encrypt(PLAINTEXT, ROW);
    const e = secretErrorOf(() => box.decrypt(foreign, ROW));
    expect(e.code).toBe('SECRET_KEY_UNKNOWN');
    expect(e.keyId).toBe(other.currentKeyId);
    expect(e.message).toBe(`secret was encrypted with unknown key "${other.currentKeyId}"`);
    expect(secretErrorOf(() => box.needsRotation(foreign)).code).toBe('SECRET_KEY_UNKNOWN');
  });

  it('fails when the key id is swapped for another known key', () => {
    const k2 = key();
    const both = createSecretBox({ current: k1, previous: [k2] });
    const swapped = both.encrypt(PLAINTEXT, ROW).replace(`:${k1.id}:`, `:${k2.id}:`);
    expect(secretErrorOf(() => both.decrypt(swapped, ROW)).code).toBe('SECRET_DECRYPT_FAILED');
  });
});

describe('key rotation', () => {
  const oldKey = key();
  const newKey = key();
  const before: SecretBox = createSecretBox({ current: oldKey });
  const after: SecretBox = createSecretBox({ current: newKey, previous: [oldKey] });

  it('still decrypts values made with a previous key and says they need rotation', () => {
    const stored = before.encrypt(PLAINTEXT, ROW);
    expect(after.decrypt(stored, ROW)).toBe(PLAINTEXT);
    expect(after.needsRotation(stored)).toBe(true);
    expect(before.needsRotation(stored)).toBe(false);
  });

  it('rotate re-encrypts with the current key, and leaves current values alone', () => {
    const stored = before.encrypt(PLAINTEXT, ROW);
    const rotated = after.rotate(stored, ROW);
    expect(secretKeyId(rotated)).toBe(newKey.id);
    expect(after.needsRotation(rotated)).toBe(false);
    expect(after.decrypt(rotated, ROW)).toBe(PLAINTEXT);
    expect(after.rotate(rotated, ROW)).toBe(rotated);
    // Once the old key is dropped, only rotated values still open.
    const dropped = createSecretBox({ current: newKey });
    expect(dropped.decrypt(rotated, ROW)).toBe(PLAINTEXT);
    expect(secretErrorOf(() => dropped.decrypt(stored, ROW)).code).toBe('SECRET_KEY_UNKNOWN');
  });

  it('copies key bytes, so later changes to the caller buffer do not matter', () => {
    const material = randomBytes(32);
    const box = createSecretBox({ current: { id: 'k1', key: material } });
    const stored = box.encrypt(PLAINTEXT, ROW);
    material.fill(0);
    expect(box.decrypt(stored, ROW)).toBe(PLAINTEXT);
  });
});

describe('createSecretBox refuses bad keys', () => {
  const rows: { name: string; keys: Parameters<typeof createSecretBox>[0] }[] = [
    { name: 'a 16-byte key', keys: { current: { id: 'k', key: randomBytes(16) } } },
    { name: 'an empty id', keys: { current: { id: '', key: randomBytes(32) } } },
    { name: 'an id with a colon', keys: { current: { id: 'a:b', key: randomBytes(32) } } },
    { name: 'a 65-character id', keys: { current: { id: 'k'.repeat(65), key: randomBytes(32) } } },
    {
      name: 'one id for two keys',
      keys: { current: { id: 'k', key: randomBytes(32) }, previous: [{ id: 'k', key: randomBytes(32) }] },
    },
    {
      name: 'a short previous key',
      keys: { current: key(), previous: [{ id: 'old', key: randomBytes(31) }] },
    },
  ];
  it.each(rows)('$name', ({ keys }) => {
    expect(secretErrorOf(() => createSecretBox(keys)).code).toBe('SECRET_KEY_INVALID');
  });
});

describe('parseEncryptionKey', () => {
  const material = randomBytes(32);
  const accepted: { form: string; text: string }[] = [
    { form: 'hex', text: material.toString('hex') },
    { form: 'upper-case hex', text: material.toString('hex').toUpperCase() },
    { form: 'base64', text: material.toString('base64') },
    { form: 'base64 without padding', text: material.toString('base64').replace(/=$/, '') },
    { form: 'base64url', text: material.toString('base64url') },
    { form: 'base64 with surrounding whitespace', text: ` ${material.toString('base64')}\n` },
  ];
  it.each(accepted)('accepts $form', ({ text }) => {
    expect(parseEncryptionKey(text).equals(material)).toBe(true);
  });

  const rejected: { form: string; text: string }[] = [
    { form: 'the empty string', text: '' },
    { form: '62 hex characters', text: material.toString('hex').slice(2) },
    { form: '66 hex characters', text: `${material.toString('hex')}00` },
    { form: 'base64 of 31 bytes', text: randomBytes(31).toString('base64') },
    { form: 'base64 of 33 bytes', text: randomBytes(33).toString('base64') },
    { form: 'base64 of 48 bytes (64 characters, not hex)', text: randomBytes(48).toString('base64') },
    { form: 'non-canonical base64 (stray bits)', text: `${material.toString('base64').slice(0, 42)}B=` },
    { form: 'a passphrase', text: 'correct horse battery staple' },
  ];
  it.each(rejected)('rejects $form without echoing it', ({ text }) => {
    if (text.endsWith('B=')) expect(Buffer.from(text, 'base64')).toHaveLength(32);
    const e = secretErrorOf(() => parseEncryptionKey(text));
    expect(e.code).toBe('SECRET_KEY_INVALID');
    if (text.length > 0) expect(e.message).not.toContain(text.trim());
  });

  it('reads what generateEncryptionKey writes', () => {
    expect(parseEncryptionKey(generateEncryptionKey())).toHaveLength(32);
  });
});

describe('keyIdOf', () => {
  it('is the first 8 hex characters of sha256(key), stable for the same bytes', () => {
    const material = Buffer.alloc(32, 7);
    expect(keyIdOf(material)).toMatch(/^[0-9a-f]{8}$/);
    expect(keyIdOf(Buffer.alloc(32, 7))).toBe(keyIdOf(material));
    expect(keyIdOf(Buffer.alloc(32, 8))).not.toBe(keyIdOf(material));
    expect(keyIdOf(Buffer.alloc(32, 0))).toBe('66687aad');
  });
});
