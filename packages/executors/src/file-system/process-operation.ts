import path from 'node:path';
import type { Writable } from 'node:stream';
import type { FileProcessing } from '@chronos/core';
import { fileError, fromFsError, quote } from './fs-errors.ts';
import {
  basename,
  capped,
  dirname,
  joinRel,
  relativeTo,
  requireFiles,
  selectSources,
  type FileOperationContext,
} from './operation-context.ts';
import { cellText, compileTransforms, type Cell } from './row-transforms.ts';
import { O_READ, type CheckedPath } from './safe-root.ts';
import {
  StagedFile,
  checkParent,
  closeFile,
  exists,
  makeDirectory,
  openChecked,
  writeStreamOf,
} from './staged-file.ts';
import {
  csvWriter,
  listXlsxSheets,
  readCsv,
  readXlsx,
  xlsxWriter,
  type SheetInfo,
  type TableWriter,
} from './tables.ts';

export interface ProcessSheetOutput {
  input: string;
  /** The input sheet (null for CSV). */
  sheet: string | null;
  output: string;
  rowsRead: number;
  rowsWritten: number;
  rowsFiltered: number;
  rowsSkipped: number;
}

export interface ProcessOutput {
  operation: 'PROCESS';
  /** Data rows read (header rows not counted), over every input and sheet. */
  rowsRead: number;
  rowsWritten: number;
  /** Rows a `filter` transform dropped. */
  rowsFiltered: number;
  /** Rows dropped by a `convert` with `onError: 'skipRow'`. */
  rowsSkipped: number;
  /** The first (usually only) output file. */
  outputPath: string;
  outputPaths: string[];
  sheets: ProcessSheetOutput[];
}

interface OutputFile {
  dest: CheckedPath;
  /** CSV: the input sheet written to this file (null for a CSV input); XLSX output: unused. */
  sheet: string | null;
}

interface InputPlan {
  src: CheckedPath;
  /** XLSX input: the workbook's sheets, and the names selected (tab order). */
  sheets: SheetInfo[];
  selected: string[];
  outputs: OutputFile[];
}

function stem(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

/** `out/report.csv` + `Sheet 1` → `out/report.Sheet_1.csv`. */
function withSheetSuffix(rel: string, sheet: string): string {
  const dir = dirname(rel);
  const name = basename(rel);
  const dot = name.lastIndexOf('.');
  const safe = sheet.replace(/[^\p{L}\p{N}._-]+/gu, '_');
  const file = dot > 0 ? `${name.slice(0, dot)}.${safe}${name.slice(dot)}` : `${name}.${safe}`;
  return joinRel(dir, file);
}

function selectSheets(sheets: SheetInfo[], selector: string | number, where: string): string[] {
  const listed = sheets.map((s, i) => `${i} = ${JSON.stringify(s.name)}`).join(', ') || 'none';
  if (selector === '*') {
    if (sheets.length === 0) throw fileError('SHEET_NOT_FOUND', `${where}: the workbook has no sheets`);
    return sheets.map((s) => s.name);
  }
  if (typeof selector === 'number') {
    const sheet = sheets[selector];
    if (!sheet)
      throw fileError('SHEET_NOT_FOUND', `${where}: no sheet at index ${selector} (sheets: ${listed})`);
    return [sheet.name];
  }
  if (!sheets.some((s) => s.name === selector)) {
    throw fileError(
      'SHEET_NOT_FOUND',
      `${where}: no sheet named ${JSON.stringify(selector)} (sheets: ${listed})`,
    );
  }
  return [selector];
}

interface SheetStats {
  rowsRead: number;
  rowsFiltered: number;
  rowsSkipped: number;
}

/**
 * Reads a sheet's first row (the header, or the first data row), compiles the transforms against
 * its columns, and returns the output header and the transformed rows, still streamed.
 */
async function prepareSheet(
  rows: AsyncIterable<Cell[]>,
  config: FileProcessing,
  stats: SheetStats,
  where: string,
  signal: AbortSignal,
): Promise<{ header: string[] | null; rows: AsyncIterable<Cell[]> }> {
  const it = rows[Symbol.asyncIterator]();
  const first = await it.next();
  const inputHeader = config.input.header;
  const outputHeader = config.output.header ?? inputHeader;
  if (first.done) {
    return { header: null, rows: (async function* () {})() };
  }
  let columns: string[];
  let pending: Cell[] | null = null;
  if (inputHeader) {
    const seen = new Map<string, number>();
    columns = first.value.map((cell, i) => {
      const name = cellText(cell).trim() || `column${i + 1}`;
      const n = (seen.get(name) ?? 0) + 1;
      seen.set(name, n);
      return n === 1 ? name : `${name}_${n}`; // duplicate headers stay addressable
    });
  } else {
    columns = first.value.map((_, i) => String(i + 1));
    pending = first.value;
  }
  const compiled = compileTransforms(columns, config.transforms, where);
  const width = columns.length;
  let rowNumber = inputHeader ? 1 : 0;

  const handle = (row: Cell[]): Cell[] | null => {
    rowNumber++;
    stats.rowsRead++;
    if (row.length > width) {
      throw fileError(
        'PARSE_ERROR',
        `${where}, row ${rowNumber}: ${row.length} fields, but the ${inputHeader ? 'header' : 'first row'} has ${width}`,
      );
    }
    while (row.length < width) row.push(null);
    const outcome = compiled.apply(row, rowNumber);
    if ('row' in outcome) return outcome.row;
    if ('filtered' in outcome) stats.rowsFiltered++;
    else stats.rowsSkipped++;
    return null;
  };

  async function* body(): AsyncGenerator<Cell[]> {
    if (pending) {
      const out = handle(pending);
      if (out) yield out;
    }
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const next = await it.next();
      if (next.done) return;
      const out = handle(next.value);
      if (out) yield out;
    }
  }
  return { header: outputHeader ? compiled.columns : null, rows: body() };
}

/**
 * PROCESS: streams CSV (`,` `;` tab) or XLSX rows (all sheets, or one by name or 0-based index)
 * through the transforms into CSV or XLSX, never holding a whole file in memory. One input goes to
 * `targetPath`; several (a glob) go into the directory `targetPath`, keeping their layout. Several
 * sheets written as CSV give one file per sheet (`out.<sheet>.csv`). Outputs are written aside and
 * put in place only when every input succeeded.
 */
export async function processOperation(op: FileOperationContext): Promise<ProcessOutput> {
  const { payload: p, root } = op;
  const config = p.fileProcessing!;
  const targetPath = p.targetPath ?? '';
  const sources = await selectSources(op, { followFinal: true });
  requireFiles(sources, 'PROCESS');
  const target = await root.resolve(targetPath);
  const intoDir =
    sources.glob || sources.items.length > 1 || targetPath.endsWith('/') || !!target.stat?.isDirectory();
  if (intoDir && target.stat && !target.stat.isDirectory()) {
    throw fileError(
      'NOT_A_DIRECTORY',
      `PROCESS target ${quote(target.rel)} must be a directory for several inputs`,
    );
  }
  if (intoDir && !target.stat) {
    await checkParent(target, p.createDirectories);
    if (!p.createDirectories) {
      throw fileError(
        'PARENT_NOT_FOUND',
        `PROCESS target directory ${quote(target.rel)} does not exist; set createDirectories to create it`,
      );
    }
  }
  const ext = config.output.format === 'csv' ? '.csv' : '.xlsx';
  const sourceReals = new Set(sources.items.map((s) => s.real));
  const claimed = new Set<string>();

  const plans: InputPlan[] = [];
  for (const src of sources.items) {
    const where = `PROCESS ${quote(src.rel)}`;
    const destRel = intoDir
      ? joinRel(
          target.rel,
          sources.glob ? dirname(relativeTo(sources.base, src.rel)) : '',
          stem(basename(src.rel)) + ext,
        )
      : target.rel;
    let sheets: SheetInfo[] = [];
    let selected: string[] = [];
    if (config.input.format === 'xlsx') {
      const fh = await openChecked(root, src.real, O_READ, src.rel);
      try {
        sheets = await listXlsxSheets(fh, where);
      } finally {
        await closeFile(fh);
      }
      selected = selectSheets(sheets, config.input.sheet, where);
    }
    const outputRels: { rel: string; sheet: string | null }[] =
      config.output.format === 'xlsx' || config.input.format === 'csv'
        ? [{ rel: destRel, sheet: selected.length === 1 ? (selected[0] ?? null) : null }]
        : selected.length === 1
          ? [{ rel: destRel, sheet: selected[0] ?? null }]
          : selected.map((name) => ({ rel: withSheetSuffix(destRel, name), sheet: name }));
    const outputs: OutputFile[] = [];
    for (const o of outputRels) {
      const dest = await root.resolve(o.rel);
      if (dest.rel === '') throw fileError('INVALID_PATH', 'PROCESS needs a target below FILE_JOBS_ROOT');
      if (dest.stat) {
        if (!dest.stat.isFile())
          throw fileError(
            'NOT_A_FILE',
            `PROCESS output ${quote(dest.rel)}: something other than a file is there`,
          );
        if (!p.overwrite)
          throw fileError(
            'TARGET_EXISTS',
            `PROCESS output ${quote(dest.rel)} exists; set overwrite to replace it`,
          );
      }
      if (sourceReals.has(dest.real))
        throw fileError('INVALID_TARGET', `PROCESS output ${quote(dest.rel)} is one of the inputs`);
      if (claimed.has(dest.real))
        throw fileError('INVALID_TARGET', `PROCESS: two outputs would be written to ${quote(dest.rel)}`);
      claimed.add(dest.real);
      if (!intoDir) await checkParent(dest, p.createDirectories);
      outputs.push({ dest, sheet: o.sheet });
    }
    plans.push({ src, sheets, selected, outputs });
  }

  if (intoDir && !target.stat) await makeDirectory(root, target.real);
  const staged: StagedFile[] = [];
  const results: ProcessSheetOutput[] = [];
  try {
    for (const plan of plans) {
      if (op.signal.aborted) throw op.signal.reason;
      results.push(...(await processInput(op, config, plan, staged)));
    }
    for (const file of staged) await file.commit(p.overwrite);
  } catch (err) {
    await Promise.all(staged.map((f) => f.discard()));
    if (op.signal.aborted) throw op.signal.reason;
    throw fromFsError(err, 'PROCESS', sources.spec);
  }
  const outputPaths = plans.flatMap((pl) => pl.outputs.map((o) => o.dest.rel));
  const sum = (k: keyof SheetStats | 'rowsWritten') => results.reduce((n, r) => n + r[k], 0);
  return {
    operation: 'PROCESS',
    rowsRead: sum('rowsRead'),
    rowsWritten: sum('rowsWritten'),
    rowsFiltered: sum('rowsFiltered'),
    rowsSkipped: sum('rowsSkipped'),
    outputPath: outputPaths[0] ?? '',
    outputPaths: capped(outputPaths, op.limits.listMaxEntries).items,
    sheets: capped(results, op.limits.listMaxEntries).items,
  };
}

async function stage(
  op: FileOperationContext,
  dest: CheckedPath,
  staged: StagedFile[],
): Promise<{ file: StagedFile; out: Writable }> {
  const parent = path.dirname(dest.real);
  if (!(await exists(parent))) await makeDirectory(op.root, parent);
  const file = await StagedFile.create(op.root, dest);
  staged.push(file);
  return { file, out: writeStreamOf(file.handle) };
}

async function processInput(
  op: FileOperationContext,
  config: FileProcessing,
  plan: InputPlan,
  staged: StagedFile[],
): Promise<ProcessSheetOutput[]> {
  const { src } = plan;
  const where = `PROCESS ${quote(src.rel)}`;
  const results: ProcessSheetOutput[] = [];
  const fh = await openChecked(op.root, src.real, O_READ, src.rel);
  try {
    const input =
      config.input.format === 'csv'
        ? [{ name: null as string | null, rows: readCsv(fh, config.input.delimiter, op.signal, where) }]
        : readXlsx(fh, plan.sheets, new Set(plan.selected), op.signal);

    let workbook: TableWriter | null = null;
    const [firstOutput] = plan.outputs;
    if (config.output.format === 'xlsx' && firstOutput) {
      const { out } = await stage(op, firstOutput.dest, staged);
      workbook = xlsxWriter(out, op.signal);
    }
    const seen = new Set<string | null>();
    for await (const sheet of input) {
      if (seen.has(sheet.name)) continue; // a malformed workbook listing a part twice
      seen.add(sheet.name);
      const sheetWhere = sheet.name === null ? where : `${where}, sheet ${JSON.stringify(sheet.name)}`;
      const stats: SheetStats = { rowsRead: 0, rowsFiltered: 0, rowsSkipped: 0 };
      const prepared = await prepareSheet(sheet.rows, config, stats, sheetWhere, op.signal);
      let writer: TableWriter;
      let output: OutputFile;
      let outName: string;
      if (workbook && firstOutput) {
        writer = workbook;
        output = firstOutput;
        const single = plan.selected.length <= 1;
        outName =
          (single && config.output.format === 'xlsx' ? config.output.sheetName : undefined) ??
          sheet.name ??
          'Sheet1';
      } else {
        const match =
          plan.outputs.find((o) => o.sheet === sheet.name) ??
          (plan.outputs.length === 1 ? firstOutput : undefined);
        if (!match) continue;
        output = match;
        outName = sheet.name ?? 'Sheet1';
        const { out } = await stage(op, match.dest, staged);
        writer = csvWriter(out, config.output.format === 'csv' ? config.output.delimiter : ',', op.signal);
      }
      const rowsWritten = await writer.writeSheet(outName, prepared.header, prepared.rows);
      results.push({ input: src.rel, sheet: sheet.name, output: output.dest.rel, rowsWritten, ...stats });
    }
    const missing = plan.selected.filter((name) => !seen.has(name));
    if (missing.length > 0) {
      throw fileError(
        'SHEET_NOT_FOUND',
        `${where}: sheet ${JSON.stringify(missing[0])} is listed by the workbook but has no data part`,
      );
    }
    if (workbook) await workbook.finish();
    return results;
  } finally {
    await closeFile(fh);
  }
}
