export { MASK, MIN_SECRET_LENGTH, createMasker, type Masker } from './masker.ts';
export {
  createSecretBox,
  generateEncryptionKey,
  keyIdOf,
  parseEncryptionKey,
  secretKeyId,
  type SecretBox,
  type SecretBoxKeys,
  type SecretKey,
} from './secret-box.ts';
export { SecretError, type SecretErrorCode } from './secret-error.ts';
