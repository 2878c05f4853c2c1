/** Base of Chronos's error taxonomy; `code` is stable and drives API answers and retry decisions. */
export abstract class ChronosError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** One field at fault: `path` as in the input (e.g. `schedule.cronExpression`). */
export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

/** Bad input; nothing was changed. */
export class ValidationError extends ChronosError {
  readonly code = 'VALIDATION_FAILED';
  constructor(
    message: string,
    readonly issues: readonly FieldIssue[] = [],
  ) {
    super(message);
  }
}

/** The object does not exist, or the caller may not know that it does. */
export class NotFoundError extends ChronosError {
  readonly code = 'NOT_FOUND';
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} not found`);
  }
}

/** The change conflicts with the current state (duplicate name, stale version, ...). */
export class ConflictError extends ChronosError {
  readonly code = 'CONFLICT';
}

/** A run failure that retrying cannot fix. */
export class PermanentJobError extends ChronosError {
  readonly code: string;
  readonly retryable = false;
  constructor(message: string, code = 'PERMANENT', options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** A run failure that may succeed on a later attempt (subject to the job's retry_on). */
export class RetryableJobError extends ChronosError {
  readonly code: string;
  readonly retryable = true;
  constructor(message: string, code = 'RETRYABLE', options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
