export { StorageError, createStorage, type Storage, type StorageOptions } from './storage.ts';
export {
  definitionVersionOf,
  jobDefinitionKey,
  jobDefinitionsPrefix,
  jobPrefix,
  runContextKey,
  runPrefix,
} from './keys.ts';
export { LOCAL_S3_CREDENTIALS, startLocalS3, type LocalS3, type LocalS3Options } from './local-s3.ts';
export { openStorage, type OpenedStorage } from './open-storage.ts';
