import { PermanentJobError } from '../errors.ts';

export type TemplateErrorCode = 'TEMPLATE_SYNTAX' | 'TEMPLATE_UNKNOWN_VARIABLE';

/** Where a template fault is; all fields optional because a name may be unknown in many places. */
export interface TemplateErrorDetails {
  /** Paths that name nothing in the scope (`var.API_KEY`, `trigger.body.id`), as written, deduplicated. */
  readonly names?: readonly string[];
  /** 0-based offset of the offending `{{` in the string, for a syntax error. */
  readonly position?: number;
  /** Where the string sits in the payload (`headers.Authorization`, `steps[2].url`). */
  readonly location?: string;
}

/**
 * A payload template could not be rendered. Permanent: the job definition or its variables must change
 * before another attempt can succeed. Messages name paths and positions, never variable values.
 */
export class TemplateError extends PermanentJobError {
  declare readonly code: TemplateErrorCode;
  readonly names: readonly string[];
  readonly position: number | undefined;
  readonly location: string | undefined;

  constructor(code: TemplateErrorCode, message: string, details: TemplateErrorDetails = {}) {
    super(message, code);
    this.names = details.names ?? [];
    this.position = details.position;
    this.location = details.location;
  }

  /** `{{` without `}}`, an empty tag, an unknown root, a malformed path. */
  static syntax(reason: string, position: number, location?: string): TemplateError {
    const where = location === undefined ? '' : ` in ${location}`;
    return new TemplateError(
      'TEMPLATE_SYNTAX',
      `template syntax error at position ${position}${where}: ${reason}`,
      {
        position,
        location,
      },
    );
  }

  /** Every path that resolved to nothing, in one error so a user fixes them all at once. */
  static unknown(names: readonly string[]): TemplateError {
    const quoted = names.map((n) => `"${n}"`).join(', ');
    const message = names.length === 1 ? `unknown variable ${quoted}` : `unknown variables ${quoted}`;
    return new TemplateError('TEMPLATE_UNKNOWN_VARIABLE', message, { names });
  }
}
