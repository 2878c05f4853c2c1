import { Buffer } from 'node:buffer';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { SecretError } from './secret-error.ts';

const VERSION = 'v1';
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Fits `variables.key_id` (varchar 64) and cannot contain the `:` separator. */
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** An AES-256 key and the id written into every ciphertext it makes. */
export interface SecretKey {
  /** `[A-Za-z0-9_-]{1,64}`; {@link keyIdOf} gives one that is stable across restarts. */
  readonly id: string;
  /** 32 bytes; copied when the box is created. */
  readonly key: Buffer;
}

export interface SecretBoxKeys {
  /** Encrypts everything new. */
  readonly current: SecretKey;
  /**
   * Still decrypt what they made, so keys can rotate without a flag day.
   * @defaultValue []
   */
  readonly previous?: readonly SecretKey[];
}

export interface SecretBox {
  /** The id of the key `encrypt` uses (store it in `variables.key_id`). */
  readonly currentKeyId: string;
  /**
   * Seals `plaintext` as `v1:<keyId>:<nonce>:<ciphertext+tag>` (base64url, random 12-byte nonce each
   * time). `aad` (the variable row id) is authenticated, not stored: decrypting with another fails,
   * so a ciphertext copied to another row is useless.
   */
  encrypt(plaintext: string, aad: string): string;
  /** @throws SecretError `SECRET_KEY_UNKNOWN`, or `SECRET_DECRYPT_FAILED` (wrong AAD, tampered, malformed). */
  decrypt(stored: string, aad: string): string;
  /** Whether `stored` was made with a key other than the current one. @throws SecretError as `decrypt`. */
  needsRotation(stored: string): boolean;
  /** `stored` re-encrypted with the current key, or `stored` itself when it already is. */
  rotate(stored: string, aad: string): string;
}

/**
 * AES-256-GCM for sensitive variables. Decryption picks the key by the id in the stored string, so
 * values made with a previous key still open after the current key changes.
 *
 * @throws SecretError `SECRET_KEY_INVALID` when a key is not 32 bytes, an id is malformed, or one id
 *   names two different keys.
 */
export function createSecretBox(keys: SecretBoxKeys): SecretBox {
  const byId = new Map<string, { material: KeyObject; fingerprint: string }>();
  for (const { id, key } of [keys.current, ...(keys.previous ?? [])]) {
    if (!KEY_ID.test(id)) {
      throw new SecretError('SECRET_KEY_INVALID', 'a key id must match [A-Za-z0-9_-]{1,64}');
    }
    if (key.length !== KEY_BYTES) {
      throw new SecretError('SECRET_KEY_INVALID', `key "${id}" must be ${KEY_BYTES} bytes`, id);
    }
    const fingerprint = keyIdOf(key);
    const existing = byId.get(id);
    if (existing !== undefined && existing.fingerprint !== fingerprint) {
      throw new SecretError('SECRET_KEY_INVALID', `key id "${id}" is given to two different keys`, id);
    }
    byId.set(id, { material: createSecretKey(Buffer.from(key)), fingerprint });
  }
  const currentId = keys.current.id;
  const current = byId.get(currentId);
  if (current === undefined) throw new Error('unreachable: the current key was just added');

  const keyFor = (keyId: string): KeyObject => {
    const entry = byId.get(keyId);
    if (entry === undefined) {
      throw new SecretError('SECRET_KEY_UNKNOWN', `secret was encrypted with unknown key "${keyId}"`, keyId);
    }
    return entry.material;
  };

  const encrypt = (plaintext: string, aad: string): string => {
    requireAad(aad);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv(ALGORITHM, current.material, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}:${currentId}:${nonce.toString('base64url')}:${sealed.toString('base64url')}`;
  };

  const decrypt = (stored: string, aad: string): string => {
    requireAad(aad);
    const { keyId, nonce, sealed } = parseStored(stored);
    const decipher = createDecipheriv(ALGORITHM, keyFor(keyId), nonce, { authTagLength: TAG_BYTES });
    try {
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      const plain = Buffer.concat([
        decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return plain.toString('utf8');
    } catch {
      // Node's own message says nothing useful, and the cause is deliberately not chained.
      throw new SecretError(
        'SECRET_DECRYPT_FAILED',
        `secret did not authenticate with key "${keyId}": wrong AAD (row id) or tampered data`,
        keyId,
      );
    }
  };

  const needsRotation = (stored: string): boolean => {
    const { keyId } = parseStored(stored);
    keyFor(keyId);
    return keyId !== currentId;
  };

  return {
    currentKeyId: currentId,
    encrypt,
    decrypt,
    needsRotation,
    rotate: (stored, aad) => (needsRotation(stored) ? encrypt(decrypt(stored, aad), aad) : stored),
  };
}

/**
 * The key id in a stored secret, without decrypting it.
 * @throws SecretError `SECRET_DECRYPT_FAILED` when `stored` is not a v1 secret.
 */
export function secretKeyId(stored: string): string {
  return parseStored(stored).keyId;
}

/**
 * A 32-byte key from configuration: 64 hex characters, or base64 / base64url (padded or not) of exactly
 * 32 bytes. Surrounding whitespace is ignored.
 * @throws SecretError `SECRET_KEY_INVALID`; the message gives the length, never the value.
 */
export function parseEncryptionKey(value: string): Buffer {
  const text = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(text)) {
    const unpadded = text.replace(/=$/, '').replaceAll('+', '-').replaceAll('/', '_');
    const key = Buffer.from(unpadded, 'base64url');
    // Node's decoder ignores stray bits; re-encoding proves the text is the canonical form.
    if (key.length === KEY_BYTES && key.toString('base64url') === unpadded) return key;
  }
  throw new SecretError(
    'SECRET_KEY_INVALID',
    `an encryption key must be 64 hex characters or base64 of ${KEY_BYTES} bytes (got ${text.length} characters)`,
  );
}

/** First 8 hex characters of sha256(key): the same key always gets the same id, across restarts. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** A fresh random key in the base64 form {@link parseEncryptionKey} reads (for setup scripts). */
export function generateEncryptionKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

function requireAad(aad: string): void {
  // An empty AAD is almost always a missing row id, and would silently drop the row binding.
  if (aad.length === 0) throw new TypeError('secret AAD must be a non-empty string (the variable row id)');
}

function parseStored(stored: string): { keyId: string; nonce: Buffer; sealed: Buffer } {
  const parts = stored.split(':');
  const [version, keyId, nonceText, sealedText] = parts;
  if (
    parts.length !== 4 ||
    version !== VERSION ||
    keyId === undefined ||
    !KEY_ID.test(keyId) ||
    nonceText === undefined ||
    sealedText === undefined ||
    !BASE64URL.test(nonceText) ||
    !BASE64URL.test(sealedText)
  ) {
    throw new SecretError(
      'SECRET_DECRYPT_FAILED',
      'stored secret is not in the v1:<keyId>:<nonce>:<data> form',
    );
  }
  const nonce = Buffer.from(nonceText, 'base64url');
  const sealed = Buffer.from(sealedText, 'base64url');
  // Node's decoder ignores stray trailing bits; only the canonical text is accepted, so it is not malleable.
  if (nonce.toString('base64url') !== nonceText || sealed.toString('base64url') !== sealedText) {
    throw new SecretError(
      'SECRET_DECRYPT_FAILED',
      `stored secret made with key "${keyId}" is malformed`,
      keyId,
    );
  }
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) {
    throw new SecretError(
      'SECRET_DECRYPT_FAILED',
      `stored secret made with key "${keyId}" is truncated`,
      keyId,
    );
  }
  return { keyId, nonce, sealed };
}
