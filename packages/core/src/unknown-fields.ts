// Unknown fields in input: strict zod objects (z.strictObject) refuse them with one
// `unrecognized_keys` issue per object; these helpers turn that into one field issue per unknown
// field, each with its full path and, when a known field is spelled close to it, a suggestion.
import type { z } from 'zod';

/**
 * Edit distance with adjacent transpositions (optimal string alignment): `retryPolcy` →
 * `retryPolicy` is 1, `nmae` → `name` is 1.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const row = d[i]!;
      const prev = d[i - 1]!;
      let best = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      row[j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name a mistyped `name` most likely meant: the same name in another case, else the
 * closest one within a few edits (one per four characters, at least 1 and at most 3, none for
 * names of one or two characters; ties go to the first known name). Undefined when nothing is that close.
 */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  const names = [...known];
  const lower = name.toLowerCase();
  const sameCase = names.find((k) => k.toLowerCase() === lower);
  if (sameCase !== undefined) return sameCase;
  const allowed = name.length <= 2 ? 0 : Math.min(3, Math.max(1, Math.floor(name.length / 4)));
  let best: string | undefined;
  let bestDistance = allowed + 1;
  for (const k of names) {
    const distance = editDistance(lower, k.toLowerCase());
    if (distance < bestDistance) {
      best = k;
      bestDistance = distance;
    }
  }
  return best;
}

/** The message of an unknown field: `is not a known field; did you mean \`retryPolicy\`?`. */
export function unknownFieldMessage(name: string, known: Iterable<string>): string {
  const suggestion = closestName(name, known);
  return suggestion === undefined
    ? 'is not a known field'
    : `is not a known field; did you mean \`${suggestion}\`?`;
}

/** An `unrecognized_keys` issue with the known fields of the object that raised it. */
interface UnknownKeysIssue {
  code: 'unrecognized_keys';
  keys: string[];
  path: PropertyKey[];
  knownFields?: string[];
}

/**
 * A parse-time error map (`schema.safeParse(input, { error: noteKnownFields })`) that notes on each
 * `unrecognized_keys` issue the fields its object knows, read from the object schema that raised it
 * (the only place zod hands that schema out). It sets no message, so zod's own stays.
 */
export const noteKnownFields: z.core.$ZodErrorMap = (issue) => {
  if (issue.code !== 'unrecognized_keys') return undefined;
  const shape = (issue.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod
    ?.def?.shape;
  // zod copies an issue's own fields into the issue it reports, so this one travels with it.
  if (shape) (issue as unknown as UnknownKeysIssue).knownFields = Object.keys(shape);
  return undefined;
};

/**
 * One field issue per unknown field of an `unrecognized_keys` issue: its full path (under
 * `pathPrefix`) and a suggestion from the known fields `noteKnownFields` noted, if any.
 */
export function unknownFieldIssues(
  issue: z.core.$ZodIssue,
  pathPrefix = '',
): { path: string; message: string }[] | undefined {
  if (issue.code !== 'unrecognized_keys') return undefined;
  const known = (issue as unknown as UnknownKeysIssue).knownFields ?? [];
  return issue.keys.map((key) => ({
    path: [pathPrefix, ...issue.path.map(String), key].filter((p) => p !== '').join('.'),
    message: unknownFieldMessage(key, known),
  }));
}
