import { PermanentJobError } from '../errors.ts';

export type SecretErrorCode = 'SECRET_DECRYPT_FAILED' | 'SECRET_KEY_UNKNOWN' | 'SECRET_KEY_INVALID';

/**
 * A secret could not be sealed or opened, or a key is unusable. Permanent: retrying a run cannot bring
 * back a key or repair a ciphertext. Messages carry key ids at most, never plaintext or key material.
 */
export class SecretError extends PermanentJobError {
  declare readonly code: SecretErrorCode;

  constructor(
    code: SecretErrorCode,
    message: string,
    /** The key id involved, when there is one (key ids are fingerprints, not secrets). */
    readonly keyId?: string,
  ) {
    super(message, code);
  }
}
