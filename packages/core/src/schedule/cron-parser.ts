import {
  CRON_MAX_YEAR,
  CRON_MIN_YEAR,
  CronExpression,
  type CronFields,
  type NthWeekday,
} from './cron-expression.ts';
import { CronSyntaxError, type CronFieldName } from './cron-syntax-error.ts';

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const MACROS: Readonly<Record<string, string>> = {
  '@YEARLY': '0 0 1 1 *',
  '@ANNUALLY': '0 0 1 1 *',
  '@MONTHLY': '0 0 1 * *',
  '@WEEKLY': '0 0 * * 0',
  '@DAILY': '0 0 * * *',
  '@MIDNIGHT': '0 0 * * *',
  '@HOURLY': '0 * * * *',
};

interface FieldSpec {
  readonly name: Exclude<CronFieldName, 'expression'>;
  /** Bounds of a written value. */
  readonly min: number;
  readonly max: number;
  /** Bounds of `*`, `a/n` and wrap-around ranges (differs from min/max only for standard day-of-week, 0-6 + 7). */
  readonly cycleMin: number;
  readonly cycleMax: number;
  /** Names in value order, the first one worth `nameBase`. */
  readonly names?: readonly string[];
  readonly nameBase?: number;
}

const SECOND: FieldSpec = { name: 'second', min: 0, max: 59, cycleMin: 0, cycleMax: 59 };
const MINUTE: FieldSpec = { name: 'minute', min: 0, max: 59, cycleMin: 0, cycleMax: 59 };
const HOUR: FieldSpec = { name: 'hour', min: 0, max: 23, cycleMin: 0, cycleMax: 23 };
const DAY_OF_MONTH: FieldSpec = { name: 'day-of-month', min: 1, max: 31, cycleMin: 1, cycleMax: 31 };
const MONTH: FieldSpec = {
  name: 'month',
  min: 1,
  max: 12,
  cycleMin: 1,
  cycleMax: 12,
  names: MONTH_NAMES,
  nameBase: 1,
};
/** Standard numbering: 0-6 = SUN-SAT, 7 = SUN again. */
const DAY_OF_WEEK_STANDARD: FieldSpec = {
  name: 'day-of-week',
  min: 0,
  max: 7,
  cycleMin: 0,
  cycleMax: 6,
  names: DAY_NAMES,
  nameBase: 0,
};
/** Quartz numbering: 1-7 = SUN-SAT. */
const DAY_OF_WEEK_QUARTZ: FieldSpec = {
  name: 'day-of-week',
  min: 1,
  max: 7,
  cycleMin: 1,
  cycleMax: 7,
  names: DAY_NAMES,
  nameBase: 1,
};
const YEAR: FieldSpec = {
  name: 'year',
  min: CRON_MIN_YEAR,
  max: CRON_MAX_YEAR,
  cycleMin: CRON_MIN_YEAR,
  cycleMax: CRON_MAX_YEAR,
};

/** One field as written, with its offset in the original string. */
interface Token {
  readonly text: string;
  readonly position: number;
}

interface ParsedField {
  /** Raw values in the field's own numbering. */
  readonly values: Set<number>;
  /** Anything but a bare `*` or `?`. */
  readonly restricted: boolean;
  readonly lastDayOffsets: number[];
  readonly nearestWeekdays: number[];
  lastWeekdayOfMonth: boolean;
  readonly lastWeekdays: number[];
  readonly nthWeekdays: NthWeekday[];
}

class Parser {
  constructor(private readonly source: string) {}

  /** `token` may have been upper-cased for matching; the error quotes it as written. */
  fail(field: CronFieldName, token: string, position: number, reason: string): never {
    const written = this.source.slice(position, position + token.length);
    const quoted = written.toUpperCase() === token ? written : token;
    throw new CronSyntaxError(this.source, field, quoted, position, reason);
  }

  field(spec: FieldSpec, token: Token): ParsedField {
    const parsed: ParsedField = {
      values: new Set(),
      restricted: token.text !== '*' && token.text !== '?',
      lastDayOffsets: [],
      nearestWeekdays: [],
      lastWeekdayOfMonth: false,
      lastWeekdays: [],
      nthWeekdays: [],
    };
    if (token.text === '?') {
      if (spec !== DAY_OF_MONTH && spec.name !== 'day-of-week') {
        this.fail(spec.name, '?', token.position, '"?" is only allowed in day-of-month and day-of-week');
      }
      return parsed;
    }
    let offset = 0;
    const items = token.text.split(',');
    items.forEach((item, index) => {
      const position = token.position + offset;
      offset += item.length + 1;
      if (item === '') {
        this.fail(spec.name, ',', index === 0 ? position : position - 1, 'empty list item');
      }
      this.item(spec, item.toUpperCase(), position, parsed);
    });
    return parsed;
  }

  item(spec: FieldSpec, item: string, position: number, into: ParsedField): void {
    if (item === '?') {
      this.fail(spec.name, '?', position, '"?" must be the whole field');
    }
    if (this.special(spec, item, position, into)) return;

    const slash = item.indexOf('/');
    const base = slash < 0 ? item : item.slice(0, slash);
    let step = 1;
    if (slash >= 0) {
      const stepText = item.slice(slash + 1);
      const stepPosition = position + slash + 1;
      if (!/^\d+$/.test(stepText)) {
        this.fail(
          spec.name,
          stepText || '/',
          stepText ? stepPosition : position + slash,
          'step must be a positive integer',
        );
      }
      step = Number(stepText);
      const span = spec.cycleMax - spec.cycleMin + 1;
      if (step < 1) this.fail(spec.name, stepText, stepPosition, 'step must be at least 1');
      if (step > span) this.fail(spec.name, stepText, stepPosition, `step must be at most ${span}`);
    }

    let from: number;
    let to: number;
    if (base === '*') {
      from = spec.cycleMin;
      to = spec.cycleMax;
    } else {
      const dash = base.indexOf('-', 1);
      if (dash < 0) {
        from = this.value(spec, base, position);
        // `a/n` runs from a to the end of the field; a lone value is itself
        to = slash >= 0 ? Math.max(from, spec.cycleMax) : from;
      } else {
        from = this.value(spec, base.slice(0, dash), position);
        to = this.value(spec, base.slice(dash + 1), position + dash + 1);
        if (from > to && spec === YEAR) {
          this.fail(spec.name, base, position, 'range start is after its end');
        }
      }
    }
    for (const v of this.expand(spec, from, to, step)) into.values.add(v);
  }

  /** Values of `from-to/step`; a reversed range wraps around the field (`FRI-MON`, `22-2`). */
  expand(spec: FieldSpec, from: number, to: number, step: number): number[] {
    if (from > to && from === 7 && spec === DAY_OF_WEEK_STANDARD) from = 0; // `7-2` = SUN-TUE
    const sequence: number[] = [];
    if (from <= to) {
      for (let v = from; v <= to; v++) sequence.push(v);
    } else {
      for (let v = from; v <= spec.cycleMax; v++) sequence.push(v);
      for (let v = spec.cycleMin; v <= to; v++) sequence.push(v);
    }
    return sequence.filter((_, i) => i % step === 0);
  }

  value(spec: FieldSpec, text: string, position: number): number {
    if (/^\d+$/.test(text)) {
      const n = Number(text);
      if (n < spec.min || n > spec.max) {
        this.fail(spec.name, text, position, `value out of range ${spec.min}-${spec.max}`);
      }
      return n;
    }
    const nameIndex = spec.names?.indexOf(text) ?? -1;
    if (nameIndex >= 0) return nameIndex + (spec.nameBase ?? 0);
    const isDay = spec === DAY_OF_MONTH;
    const isWeekday = spec.name === 'day-of-week';
    if (text === '') this.fail(spec.name, text, position, 'missing value');
    if (spec.names !== undefined && /^[A-Z]{2,}$/.test(text) && text !== 'LW') {
      const names = `${spec.names[0]}-${spec.names[spec.names.length - 1]}`;
      this.fail(spec.name, text, position, `unknown name (expected ${names})`);
    }
    if (text.includes('#')) {
      const reason = isWeekday
        ? '"#" needs a weekday and an occurrence, as in 2#3'
        : '"#" is only allowed in day-of-week';
      this.fail(spec.name, text, position, reason);
    }
    if (text.includes('W')) {
      const reason = isDay
        ? '"W" needs a single day, as in 15W or LW'
        : '"W" is only allowed in day-of-month';
      this.fail(spec.name, text, position, reason);
    }
    if (text.includes('L')) {
      if (isDay) this.fail(spec.name, text, position, 'day-of-month "L" must be L, L-n or LW');
      if (isWeekday)
        this.fail(spec.name, text, position, 'day-of-week "L" must be L or <weekday>L, as in 5L');
      this.fail(spec.name, text, position, '"L" is only allowed in day-of-month and day-of-week');
    }
    return this.fail(spec.name, text, position, 'not a number');
  }

  /** `L`, `L-n`, `nW`, `LW` (day-of-month); `L`, `nL`, `n#k` (day-of-week). False when `item` is none of them. */
  special(spec: FieldSpec, item: string, position: number, into: ParsedField): boolean {
    const stepAfter = (text: string) => {
      if (text.includes('/')) this.fail(spec.name, item, position, 'a step cannot follow L, W or #');
    };
    if (spec === DAY_OF_MONTH) {
      const base = item.split('/')[0] ?? '';
      let match: RegExpExecArray | null;
      if (base === 'L') {
        stepAfter(item);
        into.lastDayOffsets.push(0);
      } else if (base === 'LW') {
        stepAfter(item);
        into.lastWeekdayOfMonth = true;
      } else if ((match = /^L-(\d+)$/.exec(base)) !== null) {
        stepAfter(item);
        const n = Number(match[1]);
        if (n > 30) this.fail(spec.name, match[1] ?? '', position + 2, 'offset after L- must be 0-30');
        into.lastDayOffsets.push(n);
      } else if ((match = /^(\d+)W$/.exec(base)) !== null) {
        stepAfter(item);
        into.nearestWeekdays.push(this.value(spec, match[1] ?? '', position));
      } else {
        return false;
      }
      return true;
    }
    if (spec.name === 'day-of-week') {
      const base = item.split('/')[0] ?? '';
      const quartz = spec === DAY_OF_WEEK_QUARTZ;
      const toWeekday = (raw: number) => (quartz ? raw - 1 : raw % 7);
      let match: RegExpExecArray | null;
      if (base === 'L') {
        stepAfter(item);
        into.values.add(quartz ? 7 : 6); // a lone L is the week's last day, Saturday
      } else if ((match = /^([A-Z0-9]+)L$/.exec(base)) !== null) {
        stepAfter(item);
        into.lastWeekdays.push(toWeekday(this.value(spec, match[1] ?? '', position)));
      } else if ((match = /^([A-Z0-9]+)#(.*)$/.exec(base)) !== null) {
        stepAfter(item);
        const weekdayText = match[1] ?? '';
        const nthText = match[2] ?? '';
        const weekday = toWeekday(this.value(spec, weekdayText, position));
        const nthPosition = position + weekdayText.length + 1;
        if (!/^[1-5]$/.test(nthText)) {
          this.fail(
            spec.name,
            nthText || '#',
            nthText ? nthPosition : nthPosition - 1,
            'occurrence after "#" must be 1-5',
          );
        }
        into.nthWeekdays.push({ weekday, nth: Number(nthText) });
      } else {
        return false;
      }
      return true;
    }
    return false;
  }
}

function tokenize(expression: string): Token[] {
  return [...expression.matchAll(/\S+/g)].map((m) => ({ text: m[0], position: m.index }));
}

const sorted = (values: Iterable<number>) => Object.freeze([...new Set(values)].sort((a, b) => a - b));

/**
 * Parses without checking that the expression can ever fire; the fire-time functions use this so an
 * impossible expression yields no fire times instead of an error.
 */
export function compileCron(expression: string): CronExpression {
  const source = expression;
  let tokens = tokenize(expression);
  const first = tokens[0];
  if (tokens.length === 1 && first !== undefined && first.text.startsWith('@')) {
    const macro = MACROS[first.text.toUpperCase()];
    if (macro === undefined) {
      throw new CronSyntaxError(
        source,
        'expression',
        first.text,
        first.position,
        'unknown macro (expected @yearly, @monthly, @weekly, @daily or @hourly)',
      );
    }
    // positions inside a macro never surface: its expansion is valid
    tokens = tokenize(macro).map((t) => ({ text: t.text, position: first.position }));
  }
  if (tokens.length < 5 || tokens.length > 7) {
    // too many: point at the first surplus field; too few: underline the whole expression
    const extra = tokens[7];
    const start = tokens[0]?.position ?? 0;
    throw new CronSyntaxError(
      source,
      'expression',
      extra?.text ?? expression.trim(),
      extra?.position ?? start,
      `expected 5 fields (minute hour day-of-month month day-of-week) or 6-7 (second first, optional year last), got ${tokens.length}`,
    );
  }

  const format = tokens.length === 5 ? 'STANDARD' : 'QUARTZ';
  const parser = new Parser(source);
  const quartz = format === 'QUARTZ';
  const specs = quartz
    ? [SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK_QUARTZ, YEAR]
    : [MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK_STANDARD];
  const fields = tokens.map((token, i) => parser.field(specs[i] ?? YEAR, token));
  const [seconds, minutes, hours, dom, months, dow, years] = quartz ? fields : [undefined, ...fields];
  if (
    minutes === undefined ||
    hours === undefined ||
    dom === undefined ||
    months === undefined ||
    dow === undefined
  ) {
    throw new Error('unreachable: field count checked above');
  }

  const domToken = tokens[quartz ? 3 : 2];
  const dowToken = tokens[quartz ? 5 : 4];
  if (domToken?.text === '?' && dowToken?.text === '?') {
    parser.fail(
      'day-of-week',
      '?',
      dowToken.position,
      '"?" may stand in only one of day-of-month and day-of-week',
    );
  }
  if (quartz && dom.restricted && dow.restricted && dowToken !== undefined) {
    parser.fail(
      'day-of-week',
      dowToken.text,
      dowToken.position,
      'Quartz cannot combine day-of-month and day-of-week: set one of them to "?"',
    );
  }

  const toWeekday = (raw: number) => (quartz ? raw - 1 : raw % 7);
  const cronFields: CronFields = {
    source,
    format,
    seconds: seconds === undefined ? Object.freeze([0]) : sorted(seconds.values),
    minutes: sorted(minutes.values),
    hours: sorted(hours.values),
    daysOfMonth: sorted(dom.values),
    lastDayOffsets: sorted(dom.lastDayOffsets),
    nearestWeekdays: sorted(dom.nearestWeekdays),
    lastWeekdayOfMonth: dom.lastWeekdayOfMonth,
    months: sorted(months.values),
    daysOfWeek: sorted([...dow.values].map(toWeekday)),
    lastWeekdaysOfMonth: sorted(dow.lastWeekdays),
    nthWeekdays: Object.freeze(
      [...new Map(dow.nthWeekdays.map((n) => [`${n.weekday}#${n.nth}`, n])).values()].map((n) =>
        Object.freeze(n),
      ),
    ),
    years: years === undefined || !years.restricted ? null : sorted(years.values),
    dayOfMonthRestricted: dom.restricted,
    dayOfWeekRestricted: dow.restricted,
  };
  return new CronExpression(cronFields);
}

/**
 * Parses a cron expression:
 * - 5 fields `minute hour day-of-month month day-of-week` (day-of-week 0-7, 0 and 7 = SUN; seconds 0);
 * - Quartz 6-7 fields `second minute hour day-of-month month day-of-week [year]` (day-of-week 1-7,
 *   1 = SUN; year 1970-2199).
 *
 * Both take names (JAN-DEC, SUN-SAT, any case), `*`, `a-b`, `*\/n`, `a/n` (a to the field's end),
 * `a-b/n`, lists, `?`, day-of-month `L`, `L-n`, `nW`, `LW` and day-of-week `nL`, `n#k` (k 1-5) and a
 * lone `L` (= SAT); these may also appear in lists. Also `@yearly`, `@monthly`, `@weekly`, `@daily`,
 * `@hourly`.
 *
 * Decisions where cron dialects differ:
 * - A reversed range wraps around (`FRI-MON`, `22-2`, `NOV-FEB`); in year it is an error.
 * - `?` is accepted in 5 fields too and means the same as `*`; it may stand in only one of the two.
 * - Day-of-month and day-of-week both restricted (neither `*` nor `?`): 5 fields match either (Vixie's
 *   OR, also for `*\/2`); Quartz rejects it. Quartz with one `*` and the other restricted is accepted.
 * - `nW` never leaves the month (`1W` on Saturday the 1st is Monday the 3rd) and skips months without
 *   day n; `L-n` skips months too short for it.
 *
 * @throws CronSyntaxError with the offending token's position, or when no date in 1970-2199 matches.
 */
export function parseCron(expression: string): CronExpression {
  const cron = compileCron(expression);
  if (cron.neverFires()) {
    const start = /\S/.exec(expression)?.index ?? 0;
    throw new CronSyntaxError(
      expression,
      'expression',
      expression.trim(),
      start,
      `can never fire: no date from ${CRON_MIN_YEAR} to ${CRON_MAX_YEAR} matches`,
    );
  }
  return cron;
}
