import { TemplateError } from './template-error.ts';

/** What a tag refers to, before it is looked up in a scope. */
export type TemplateRef =
  | { readonly root: 'var'; readonly name: string }
  | { readonly root: 'run' | 'job' | 'trigger'; readonly segments: readonly string[] };

/** One `{{ path }}`; `source` is the path as written (trimmed), `position` the offset of its `{{`. */
export interface TemplateTag {
  readonly source: string;
  readonly position: number;
  readonly ref: TemplateRef;
}

/** Literal text (escapes already applied) or a tag. */
export type TemplatePart = string | TemplateTag;

// A root, then dot-separated segments; `$` and `-` so header names like `x-request-id` can be named.
const PATH = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_$-]+)*$/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;
const ROOTS = new Set(['var', 'run', 'job', 'trigger']);

/**
 * Splits a template into text and tags. Pure syntax: whether a name exists is decided by the renderer.
 * See {@link renderTemplate} for the grammar.
 *
 * @throws TemplateError `TEMPLATE_SYNTAX` at the first malformed tag.
 */
export function parseTemplate(input: string, location?: string): TemplatePart[] {
  if (!input.includes('{{')) return [input];
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  for (;;) {
    const open = input.indexOf('{{', i);
    if (open < 0) {
      text += input.slice(i);
      break;
    }
    text += input.slice(i, open);
    if (input.startsWith('{{{{', open)) {
      text += '{{';
      i = open + 4;
      continue;
    }
    if (input[open + 2] === '{') {
      throw TemplateError.syntax('"{{{" is not a tag; write "{{{{" for a literal "{{"', open, location);
    }
    const close = input.indexOf('}}', open + 2);
    const nextOpen = input.indexOf('{{', open + 2);
    if (close < 0 || (nextOpen >= 0 && nextOpen < close)) {
      throw TemplateError.syntax('"{{" without a closing "}}"', open, location);
    }
    const source = input.slice(open + 2, close).trim();
    const ref = parseRef(source, open, location);
    if (text !== '') parts.push(text);
    text = '';
    parts.push({ source, position: open, ref });
    i = close + 2;
  }
  if (text !== '') parts.push(text);
  return parts;
}

function parseRef(source: string, position: number, location: string | undefined): TemplateRef {
  if (source === '') throw TemplateError.syntax('empty tag', position, location);
  const dot = source.indexOf('.');
  const root = dot < 0 ? source : source.slice(0, dot);
  if (!ROOTS.has(root) && /^[A-Za-z_][A-Za-z0-9_]*$/.test(root)) {
    throw TemplateError.syntax(
      `unknown root "${clip(root)}" (expected var, run, job or trigger)`,
      position,
      location,
    );
  }
  if (!PATH.test(source)) throw TemplateError.syntax(`invalid path "${clip(source)}"`, position, location);
  if (root === 'var') {
    const name = source.slice(4);
    if (dot < 0 || !VAR_NAME.test(name)) {
      throw TemplateError.syntax(`invalid variable name in "${clip(source)}"`, position, location);
    }
    return { root, name };
  }
  return {
    root: root as 'run' | 'job' | 'trigger',
    segments: dot < 0 ? [] : source.slice(dot + 1).split('.'),
  };
}

// Template text is not secret, but a 10 kB "path" would make an unreadable message.
function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
