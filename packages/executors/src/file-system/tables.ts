import type { FileHandle } from 'node:fs/promises';
import { Readable, addAbortSignal, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CsvDelimiter } from '@chronos/core';
import { CsvError, parse } from 'csv-parse';
import { stringify } from 'csv-stringify';
import ExcelJS from 'exceljs';
import type { ZipFile } from 'yauzl';
import { readStreamOf } from './staged-file.ts';
import { openZip } from './zip-reader.ts';
import { fileError } from './fs-errors.ts';
import type { Cell } from './row-transforms.ts';

/** The longest CSV record accepted: an unclosed quote must not swallow the whole file into memory. */
const MAX_CSV_RECORD = 16 * 1024 * 1024;
/** Rows written between two yields to the event loop (lets file I/O drain and aborts land). */
const YIELD_EVERY = 1000;

/**
 * The delimiter of a CSV whose first bytes are `head`: of `,` `;` and tab, the one most frequent
 * outside quotes on the first line (`,` when none occurs).
 */
export function sniffDelimiter(head: string): CsvDelimiter {
  const counts: Record<CsvDelimiter, number> = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (const ch of head) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '\n' || ch === '\r')) break;
    else if (!quoted && (ch === ',' || ch === ';' || ch === '\t')) counts[ch]++;
  }
  const best = (Object.keys(counts) as CsvDelimiter[]).reduce((a, b) => (counts[b] > counts[a] ? b : a), ',');
  return counts[best] > 0 ? best : ',';
}

/** Streams the records of a CSV file (open handle) as string cells. */
export async function* readCsv(
  fh: FileHandle,
  delimiter: CsvDelimiter | undefined,
  signal: AbortSignal,
  where: string,
): AsyncGenerator<Cell[]> {
  let chosen = delimiter;
  if (!chosen) {
    const head = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    chosen = sniffDelimiter(head.subarray(0, bytesRead).toString('utf8'));
  }
  const input = addAbortSignal(signal, readStreamOf(fh, { highWaterMark: 256 * 1024 }));
  const parser = parse({
    delimiter: chosen,
    bom: true,
    relax_column_count: true,
    skip_empty_lines: true,
    max_record_size: MAX_CSV_RECORD,
  });
  input.on('error', (err) => parser.destroy(err));
  input.pipe(parser);
  try {
    for await (const record of parser as AsyncIterable<string[]>) yield record;
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (err instanceof CsvError) {
      throw fileError('PARSE_ERROR', `${where}: invalid CSV (${err.message})`, err);
    }
    throw err;
  } finally {
    input.destroy();
    parser.destroy();
  }
}

/** A sheet of a workbook, in tab order. */
export interface SheetInfo {
  name: string;
  /** The part holding its cells, e.g. `worksheets/sheet1.xml` (relative to `xl/`). */
  part: string | null;
}

function xmlDecode(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (all, e: string) => {
    switch (e) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    const code = e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return Number.isFinite(code) ? String.fromCodePoint(code) : all;
  });
}

function attribute(tag: string, name: string): string | null {
  const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`).exec(tag);
  return m ? xmlDecode(m[2] ?? m[3] ?? '') : null;
}

/**
 * The sheets of an XLSX file in tab order, read from its (small) workbook part without streaming
 * the sheets: lets a run check a sheet name or index, and name its outputs, before writing anything.
 */
export async function listXlsxSheets(fh: FileHandle, where: string): Promise<SheetInfo[]> {
  let zip: ZipFile;
  try {
    zip = await openZip(fh, { decodeStrings: true });
  } catch (err) {
    throw fileError('PARSE_ERROR', `${where}: not an XLSX file (${(err as Error).message})`, err);
  }
  const parts = new Map<string, string>();
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName !== 'xl/workbook.xml' && entry.fileName !== 'xl/_rels/workbook.xml.rels') continue;
      if (entry.uncompressedSize > 16 * 1024 * 1024) throw new Error(`${entry.fileName} is too large`);
      const stream = await zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
      parts.set(entry.fileName, Buffer.concat(chunks).toString('utf8'));
    }
  } catch (err) {
    throw fileError('PARSE_ERROR', `${where}: unreadable XLSX file (${(err as Error).message})`, err);
  } finally {
    zip.close();
  }
  const workbook = parts.get('xl/workbook.xml');
  if (workbook === undefined)
    throw fileError('PARSE_ERROR', `${where}: not an XLSX file (no xl/workbook.xml)`);
  const targets = new Map<string, string>();
  for (const tag of (parts.get('xl/_rels/workbook.xml.rels') ?? '').match(/<(\w+:)?Relationship\b[^>]*>/g) ??
    []) {
    const id = attribute(tag, 'Id');
    const target = attribute(tag, 'Target');
    if (id !== null && target !== null) targets.set(id, target.replace(/^\/?(xl\/)?/, ''));
  }
  const sheets: SheetInfo[] = [];
  for (const tag of workbook.match(/<(\w+:)?sheet\b[^>]*>/g) ?? []) {
    const name = attribute(tag, 'name');
    const rid = attribute(tag, 'r:id') ?? attribute(tag, '\\w+:id');
    if (name !== null) sheets.push({ name, part: rid === null ? null : (targets.get(rid) ?? null) });
  }
  return sheets;
}

/** An XLSX cell value as a plain cell: formulas give their result, rich text its text, errors `#N/A`… */
export function plainCell(value: unknown): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (value instanceof Date) return value;
  if (typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v.richText))
      return (v.richText as { text?: unknown }[]).map((r) => String(r.text ?? '')).join('');
    if ('result' in v) return plainCell(v.result);
    if ('formula' in v || 'sharedFormula' in v) return null;
    if ('text' in v) return plainCell(v.text);
    if ('error' in v) return String(v.error);
  }
  return String(value);
}

export interface XlsxSheetRows {
  name: string;
  rows: AsyncIterable<Cell[]>;
}

/**
 * Streams the wanted sheets of an XLSX file (exceljs' WorkbookReader: rows are parsed as they are
 * read; shared strings and styles are kept in memory, sheets that precede them in the archive are
 * spooled to temporary files by exceljs).
 */
/** Workbooks up to this size are read whole; larger ones are streamed. */
const SMALL_XLSX_BYTES = 16 * 1024 * 1024;

/**
 * A small workbook read whole. exceljs's streaming reader spools worksheets that precede
 * xl/workbook.xml to temporary files and can fail on them asynchronously; a small file does not need
 * streaming, so it avoids that path.
 */
async function* readSmallXlsx(
  fh: FileHandle,
  size: number,
  wanted: ReadonlySet<string>,
  signal: AbortSignal,
): AsyncGenerator<XlsxSheetRows> {
  const buffer = Buffer.alloc(size);
  let read = 0;
  while (read < size) {
    const { bytesRead } = await fh.read(buffer, read, size - read, read);
    if (bytesRead === 0) break;
    read += bytesRead;
  }
  if (signal.aborted) throw signal.reason;
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(buffer.subarray(0, read) as unknown as ArrayBuffer);
  for (const ws of workbook.worksheets) {
    if (!wanted.has(ws.name)) continue;
    const rows: { values: unknown }[] = [];
    ws.eachRow({ includeEmpty: false }, (row) => rows.push({ values: row.values }));
    async function* each(): AsyncGenerator<{ values: unknown }> {
      for (const r of rows) {
        if (signal.aborted) throw signal.reason;
        yield r;
      }
    }
    yield { name: ws.name, rows: xlsxRows(each()) };
  }
}

export async function* readXlsx(
  fh: FileHandle,
  sheets: readonly SheetInfo[],
  wanted: ReadonlySet<string>,
  signal: AbortSignal,
): AsyncGenerator<XlsxSheetRows> {
  const { size } = await fh.stat();
  if (size <= SMALL_XLSX_BYTES) {
    yield* readSmallXlsx(fh, size, wanted, signal);
    return;
  }
  const input = addAbortSignal(signal, readStreamOf(fh, { highWaterMark: 256 * 1024 }));
  const byPart = new Map(sheets.filter((s) => s.part !== null).map((s) => [s.part, s.name]));
  const known = new Set(sheets.map((s) => s.name));
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(input, {
    worksheets: 'emit',
    sharedStrings: 'cache',
    styles: 'cache', // tells date cells from numbers
    hyperlinks: 'ignore',
    entries: 'ignore',
  });
  // exceljs reads `model.sheets` when a worksheet part comes before xl/workbook.xml in the archive
  // (the order varies) and crashes on the undefined model; with an empty one it names the sheet
  // later, and the sheet is named here by its part instead.
  const withModel = reader as unknown as { model?: unknown };
  withModel.model ??= { sheets: [] };
  try {
    for await (const ws of reader) {
      const sheet = ws as unknown as { name: string; id: number | string } & AsyncIterable<{
        values: unknown;
      }>;
      const name = known.has(sheet.name)
        ? sheet.name
        : (byPart.get(`worksheets/sheet${sheet.id}.xml`) ?? sheet.name);
      if (!wanted.has(name)) continue;
      yield { name, rows: xlsxRows(sheet) };
    }
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw err;
  } finally {
    input.destroy();
  }
}

async function* xlsxRows(sheet: AsyncIterable<{ values: unknown }>): AsyncGenerator<Cell[]> {
  for await (const row of sheet) {
    const values = row.values as unknown[];
    const cells: Cell[] = [];
    // exceljs row values are 1-based and sparse.
    for (let i = 1; i < values.length; i++) cells.push(plainCell(values[i]));
    while (cells.length > 0 && cells[cells.length - 1] === null) cells.pop();
    yield cells;
  }
}

/** Writes the sheets of one output: a CSV file per sheet, or one workbook. */
export interface TableWriter {
  /** Writes one sheet; resolves with the number of data rows written. */
  writeSheet(name: string, header: readonly string[] | null, rows: AsyncIterable<Cell[]>): Promise<number>;
  /** Finishes the file (the workbook's closing parts). */
  finish(): Promise<void>;
}

/** One CSV sheet into `out` (ended when written). */
export function csvWriter(out: Writable, delimiter: CsvDelimiter, signal: AbortSignal): TableWriter {
  return {
    async writeSheet(_name, header, rows) {
      let written = 0;
      async function* records(): AsyncGenerator<unknown[]> {
        if (header) yield [...header];
        for await (const row of rows) {
          written++;
          yield row;
        }
      }
      const stringifier = stringify({
        delimiter,
        cast: {
          boolean: (v) => (v ? 'true' : 'false'),
          date: (v) => (Number.isNaN(v.getTime()) ? '' : v.toISOString()),
        },
      });
      await pipeline(Readable.from(records()), stringifier, out, { signal });
      return written;
    },
    async finish() {},
  };
}

const DATE_FORMAT = 'yyyy-mm-dd hh:mm:ss';

/** A streamed workbook (exceljs WorkbookWriter) into `out`; rows are committed as they come. */
export function xlsxWriter(out: Writable, signal: AbortSignal): TableWriter {
  const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({
    stream: out,
    useStyles: true,
    useSharedStrings: false,
  });
  // Once the run fails or aborts, `out` is destroyed under the zip writer: keep its late errors
  // from going unhandled, and stop the zip writer.
  let failed: Error | null = null;
  out.on('error', (err) => {
    failed ??= err;
  });
  const stop = () => (workbook as unknown as { zip?: { abort?: () => void } }).zip?.abort?.();
  signal.addEventListener('abort', stop, { once: true });
  const check = () => {
    if (signal.aborted) throw signal.reason;
    if (failed) throw failed;
  };
  return {
    async writeSheet(name, header, rows) {
      const sheet = workbook.addWorksheet(name);
      if (header) sheet.addRow([...header]).commit();
      let written = 0;
      for await (const cells of rows) {
        const values = cells.map((v) => (v === '' ? null : v));
        const row = sheet.addRow(values);
        values.forEach((v, i) => {
          if (v instanceof Date) row.getCell(i + 1).numFmt = DATE_FORMAT;
        });
        row.commit();
        if (++written % YIELD_EVERY === 0) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          check();
        }
      }
      sheet.commit();
      check();
      return written;
    },
    async finish() {
      try {
        await workbook.commit();
        check();
      } finally {
        signal.removeEventListener('abort', stop);
      }
    },
  };
}
