import type { ConversionType, FileTransform } from '@chronos/core';
import { invalidPayload } from '../errors.ts';
import { fileError } from './fs-errors.ts';

/** One cell as read from CSV (always strings) or XLSX, or as converted. */
export type Cell = string | number | boolean | Date | null;

/** What a compiled pipeline does with a row. */
export type RowOutcome = { row: Cell[] } | { filtered: true } | { skipped: true };

export interface CompiledTransforms {
  /** The output columns, after renames and selections. */
  columns: string[];
  /** `rowNumber` (1-based, in the input) is for error messages. */
  apply(row: Cell[], rowNumber: number): RowOutcome;
}

type Step = (row: Cell[], rowNumber: number) => Cell[] | 'filtered' | 'skipped';

export function isEmpty(value: Cell | undefined): boolean {
  return value === null || value === undefined || (typeof value === 'string' && value.trim() === '');
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TRUE = new Set(['true', 'yes', 'y', '1', 'on']);
const FALSE = new Set(['false', 'no', 'n', '0', 'off']);
/** Marks a value that does not convert. */
const FAIL = Symbol('conversion failed');

function toNumber(value: Cell): number | typeof FAIL {
  if (typeof value === 'number') return Number.isFinite(value) ? value : FAIL;
  if (typeof value === 'string') {
    const s = value.trim();
    return NUMBER.test(s) ? Number(s) : FAIL;
  }
  return FAIL;
}

/** Converts a non-empty cell, or returns FAIL. */
export function convertCell(value: Cell, to: ConversionType): Cell | typeof FAIL {
  switch (to) {
    case 'number':
      return toNumber(value);
    case 'integer': {
      const n = toNumber(value);
      return n !== FAIL && Number.isSafeInteger(n) ? n : FAIL;
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'number') return value === 1 ? true : value === 0 ? false : FAIL;
      if (typeof value === 'string') {
        const s = value.trim().toLowerCase();
        return TRUE.has(s) ? true : FALSE.has(s) ? false : FAIL;
      }
      return FAIL;
    case 'date': {
      // Strings as Date.parse reads them (ISO 8601 recommended); numbers are ambiguous and refused.
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? FAIL : value;
      if (typeof value !== 'string') return FAIL;
      const ms = Date.parse(value.trim());
      return Number.isNaN(ms) ? FAIL : new Date(ms);
    }
    case 'string':
      return cellText(value);
  }
}

/** A cell as text: dates as ISO 8601, empty as ''. */
export function cellText(value: Cell | undefined): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString();
  return String(value);
}

type FilterValue = string | number | boolean | null | undefined;

/** Orders a cell against a filter value: numbers and dates by value, anything else as text. */
function compare(cell: Cell, value: FilterValue): number | null {
  if (isEmpty(cell) || value === null || value === undefined) return null;
  if (cell instanceof Date) {
    const ms = typeof value === 'number' ? value : Date.parse(String(value));
    return Number.isNaN(ms) ? null : cell.getTime() - ms;
  }
  if (typeof value === 'number' || typeof cell === 'number') {
    const a = toNumber(cell);
    const b = toNumber(value as Cell);
    if (a !== FAIL && b !== FAIL) return a - b;
    if (typeof value === 'number') return null;
  }
  const a = cellText(cell);
  const b = String(value);
  return a < b ? -1 : a > b ? 1 : 0;
}

function matches(
  cell: Cell,
  op: Extract<FileTransform, { type: 'filter' }>['op'],
  value: FilterValue,
): boolean {
  switch (op) {
    case 'empty':
      return isEmpty(cell);
    case 'notEmpty':
      return !isEmpty(cell);
    case 'eq':
    case 'ne': {
      const equal =
        value === null || value === undefined
          ? isEmpty(cell)
          : typeof value === 'boolean'
            ? convertCell(cell, 'boolean') === value
            : compare(cell, value) === 0;
      return op === 'eq' ? equal : !equal;
    }
    case 'contains':
      return !isEmpty(cell) && cellText(cell).includes(String(value));
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const c = compare(cell, value);
      if (c === null || Number.isNaN(c)) return false;
      return op === 'gt' ? c > 0 : op === 'gte' ? c >= 0 : op === 'lt' ? c < 0 : c <= 0;
    }
  }
}

/**
 * Compiles transforms against a sheet's columns (known once its header is read). Columns are named
 * as the previous transforms left them.
 * @throws COLUMN_NOT_FOUND naming the missing column and the ones there are.
 */
export function compileTransforms(
  columns: readonly string[],
  transforms: readonly FileTransform[],
  where: string,
): CompiledTransforms {
  let current = [...columns];
  const steps: Step[] = [];
  const indexOf = (column: string, transform: string): number => {
    const i = current.indexOf(column);
    if (i < 0) {
      throw fileError(
        'COLUMN_NOT_FOUND',
        `${where}: ${transform} names column ${JSON.stringify(column)}, which is not there (columns: ${current.map((c) => JSON.stringify(c)).join(', ') || 'none'})`,
      );
    }
    return i;
  };

  transforms.forEach((t, n) => {
    const label = `transform ${n + 1} (${t.type})`;
    switch (t.type) {
      case 'mapColumns': {
        const mapping = new Map(Object.entries(t.mapping));
        const picked = [...mapping.keys()].map((from) => indexOf(from, label));
        const next = t.keepUnmapped ? current.map((c) => mapping.get(c) ?? c) : [...mapping.values()];
        const dup = next.find((c, i) => next.indexOf(c) !== i);
        if (dup !== undefined)
          throw invalidPayload(`${where}: ${label} leaves two columns named ${JSON.stringify(dup)}`);
        current = next;
        if (!t.keepUnmapped) steps.push((row) => picked.map((i) => row[i] ?? null));
        break;
      }
      case 'convert': {
        const i = indexOf(t.column, label);
        const { to, onError, column } = t;
        steps.push((row, rowNumber) => {
          const value = row[i] ?? null;
          if (isEmpty(value)) {
            row[i] = to === 'string' ? cellText(value) : null;
            return row;
          }
          const converted = convertCell(value, to);
          if (converted !== FAIL) {
            row[i] = converted;
            return row;
          }
          if (onError === 'null') {
            row[i] = null;
            return row;
          }
          if (onError === 'skipRow') return 'skipped';
          throw fileError(
            'CONVERSION_FAILED',
            `${where}, row ${rowNumber}: column ${JSON.stringify(column)} value ${JSON.stringify(cellText(value).slice(0, 100))} is not a valid ${to} (set onError to "null" or "skipRow" to tolerate it)`,
          );
        });
        break;
      }
      case 'filter': {
        const i = indexOf(t.column, label);
        const { op, value } = t;
        steps.push((row) => (matches(row[i] ?? null, op, value) ? row : 'filtered'));
        break;
      }
    }
  });

  return {
    columns: current,
    apply(row, rowNumber) {
      let r = row;
      for (const step of steps) {
        const out = step(r, rowNumber);
        if (out === 'filtered') return { filtered: true };
        if (out === 'skipped') return { skipped: true };
        r = out;
      }
      return { row: r };
    },
  };
}
