import { ValidationError } from '../errors.ts';

/** A cron field by its role; `expression` when the fault is not in one field (field count, never fires). */
export type CronFieldName =
  'second' | 'minute' | 'hour' | 'day-of-month' | 'month' | 'day-of-week' | 'year' | 'expression';

/**
 * A cron expression that cannot be parsed, or that can never fire.
 * `position` is the 0-based offset of `token` in the original string, so a UI can underline it.
 */
export class CronSyntaxError extends ValidationError {
  constructor(
    readonly expression: string,
    readonly field: CronFieldName,
    readonly token: string,
    readonly position: number,
    readonly reason: string,
    path = 'cronExpression',
  ) {
    const message = `cron: "${token}" at position ${position} (${field}): ${reason}`;
    super(message, [{ path, message }]);
  }
}

/**
 * Two lines for a terminal or a form: the expression, and a caret line under the offending token.
 *
 * ```
 * 0 60 * * * ?
 *   ^^ minute: value out of range 0-59
 * ```
 */
export function describeCronError(error: CronSyntaxError): string {
  const width = Math.max(1, error.token.length);
  return `${error.expression}\n${' '.repeat(error.position)}${'^'.repeat(width)} ${error.field}: ${error.reason}`;
}
