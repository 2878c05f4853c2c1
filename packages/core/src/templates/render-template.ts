import { formatPath, mapStrings } from './map-strings.ts';
import { TemplateError } from './template-error.ts';
import { parseTemplate, type TemplateTag } from './template-parser.ts';

/** A variable as the renderer sees it: already decrypted, job scope already merged over global. */
export interface TemplateVar {
  readonly value: string;
  /** Sensitive values are reported in `secretsUsed` so the caller can mask them. */
  readonly sensitive: boolean;
}

export interface TemplateRun {
  readonly id: string;
  /** Rendered as ISO-8601 UTC with milliseconds (`2026-03-29T01:30:00.000Z`). */
  readonly scheduledTime: Date;
  readonly attempt: number;
  readonly idempotencyKey: string;
}

export interface TemplateJob {
  readonly id: string;
  readonly name: string;
}

/** What started the run, when a webhook or manual trigger did; absent for scheduled runs. */
export interface TemplateTrigger {
  readonly body?: unknown;
  readonly query?: Readonly<Record<string, string>>;
  /** Looked up case-insensitively. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Everything a template may name. */
export interface TemplateScope {
  readonly vars: ReadonlyMap<string, TemplateVar>;
  readonly run: TemplateRun;
  readonly job: TemplateJob;
  readonly trigger?: TemplateTrigger;
}

/** A rendered value and the sensitive variable values that went into it (deduplicated). */
export interface RenderResult<T> {
  readonly value: T;
  readonly secretsUsed: string[];
}

/**
 * Renders `{{ path }}` tags in one string.
 *
 * Grammar (whitespace inside the braces is optional):
 * - `var.NAME` — a variable; NAME is `[A-Za-z_][A-Za-z0-9_.]*`.
 * - `run.id`, `run.scheduledTime` (ISO-8601 UTC), `run.attempt`, `run.idempotencyKey`.
 * - `job.id`, `job.name`.
 * - `trigger.body` or `trigger.body.a.b.0` — a path into the trigger body (numeric segments index
 *   arrays); a string is inserted as it is, anything else as JSON.
 * - `trigger.query.NAME`, `trigger.headers.NAME` — header names match case-insensitively. Segments are
 *   `[A-Za-z0-9_$-]+`; the whole query or header set cannot be inserted.
 *
 * Escape: `{{{{` is a literal `{{` (the string is scanned left to right, so `{{{{{{ var.X }}` is `{{`
 * followed by the value). `{{{` is a syntax error rather than a guess, so Handlebars' triple-stash fails
 * loudly. `}}` outside a tag needs no escape.
 *
 * Substitution is single pass and literal: an inserted value is never scanned again, so a value holding
 * `{{ var.X }}`, `${HOME}` or `$(rm -rf /)` ends up in the output as exactly that text. There are no
 * filters, defaults or expressions.
 *
 * @throws TemplateError `TEMPLATE_SYNTAX` (with the 0-based position of the bad `{{`), or
 *   `TEMPLATE_UNKNOWN_VARIABLE` naming every path the scope cannot resolve.
 */
export function renderTemplate(input: string, scope: TemplateScope): string {
  return renderDeepWithSecrets(input, scope).value;
}

/** {@link renderTemplate}, also returning the sensitive values it inserted. */
export function renderTemplateWithSecrets(input: string, scope: TemplateScope): RenderResult<string> {
  return renderDeepWithSecrets(input, scope);
}

/**
 * A copy of `value` with every string inside it (nested objects and arrays) rendered as by
 * {@link renderTemplate}. Object keys stay literal, so header names are never templated. Numbers,
 * booleans and null are kept. Unknown names from all strings are reported in one error.
 */
export function renderDeep<T>(value: T, scope: TemplateScope): T {
  return renderDeepWithSecrets(value, scope).value;
}

/**
 * {@link renderDeep}, also returning the sensitive variable values it inserted, so the caller can build
 * a masker (`createMasker(secretsUsed)`) for the run's logs, output and errors.
 */
export function renderDeepWithSecrets<T>(value: T, scope: TemplateScope): RenderResult<T> {
  const unknown = new Set<string>();
  const secrets = new Set<string>();
  const rendered = mapStrings(value, (text, path) => {
    const parts = parseTemplate(text, path.length === 0 ? undefined : formatPath(path));
    let out = '';
    for (const part of parts) {
      if (typeof part === 'string') {
        out += part;
        continue;
      }
      const resolved = resolve(part, scope, secrets);
      if (resolved === undefined) unknown.add(part.source);
      else out += resolved;
    }
    return out;
  });
  if (unknown.size > 0) throw TemplateError.unknown([...unknown]);
  return { value: rendered, secretsUsed: [...secrets] };
}

/**
 * The variable names (without `var.`) a value's templates use, so a worker loads and decrypts only
 * those. Also a syntax check for the API: it throws the same `TEMPLATE_SYNTAX` errors as rendering.
 */
export function templateVariables(value: unknown): Set<string> {
  const names = new Set<string>();
  mapStrings(value, (text, path) => {
    for (const part of parseTemplate(text, path.length === 0 ? undefined : formatPath(path))) {
      if (typeof part !== 'string' && part.ref.root === 'var') names.add(part.ref.name);
    }
    return text;
  });
  return names;
}

function resolve(tag: TemplateTag, scope: TemplateScope, secrets: Set<string>): string | undefined {
  const { ref } = tag;
  if (ref.root === 'var') {
    const variable = scope.vars.get(ref.name);
    if (variable === undefined) return undefined;
    if (variable.sensitive) secrets.add(variable.value);
    return variable.value;
  }
  const [first, ...rest] = ref.segments;
  if (ref.root === 'run') {
    if (rest.length > 0) return undefined;
    switch (first) {
      case 'id':
        return scope.run.id;
      case 'scheduledTime':
        return scope.run.scheduledTime.toISOString();
      case 'attempt':
        return String(scope.run.attempt);
      case 'idempotencyKey':
        return scope.run.idempotencyKey;
      default:
        return undefined;
    }
  }
  if (ref.root === 'job') {
    if (rest.length > 0) return undefined;
    if (first === 'id') return scope.job.id;
    if (first === 'name') return scope.job.name;
    return undefined;
  }
  const trigger = scope.trigger;
  if (trigger === undefined) return undefined;
  if (first === 'body') return bodyAt(trigger.body, rest);
  if (rest.length === 0) return undefined;
  // Query and header names may contain dots (`trigger.query.filter.name` is the key `filter.name`).
  const key = rest.join('.');
  if (first === 'query') {
    const query = trigger.query;
    return query !== undefined && Object.hasOwn(query, key) ? query[key] : undefined;
  }
  if (first === 'headers') {
    const wanted = key.toLowerCase();
    for (const [name, headerValue] of Object.entries(trigger.headers ?? {})) {
      if (name.toLowerCase() === wanted) return headerValue;
    }
  }
  return undefined;
}

function bodyAt(body: unknown, segments: readonly string[]): string | undefined {
  let node = body;
  for (const segment of segments) {
    if (Array.isArray(node)) {
      if (!/^(?:0|[1-9][0-9]*)$/.test(segment)) return undefined;
      const index = Number(segment);
      if (index >= node.length) return undefined;
      node = node[index] as unknown;
    } else if (typeof node === 'object' && node !== null && Object.hasOwn(node, segment)) {
      node = (node as Record<string, unknown>)[segment];
    } else {
      return undefined;
    }
  }
  if (node === undefined) return undefined;
  if (typeof node === 'string') return node;
  // JSON.stringify yields undefined for functions and symbols, which a JSON body cannot hold anyway.
  return JSON.stringify(node) as string | undefined;
}
