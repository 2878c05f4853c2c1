// Prisma's schema engine compiled to WebAssembly, driven over a driver adapter.
//
// The package's own entry (`schema_engine.js`) imports the `.wasm` file as an ES module, which
// Node 20 cannot load, so the wasm-bindgen glue (`schema_engine_bg.js`) is wired by hand here.
// The glue keeps its instance and cached views of the instance's memory in module-level
// variables: one glue module serves exactly one instance, and a second instance needs a second
// copy of the glue (imported under a different URL).

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import type * as Glue from '@prisma/schema-engine-wasm/schema_engine_bg';

export type SchemaEngine = Glue.SchemaEngine;
type GlueModule = typeof Glue;

/** One structured log event of the engine, as it reports them. */
export interface EngineLogEvent {
  level: string;
  message: string;
}

/** Applying migrations and diffing schema texts need nothing but the provider. */
const DATASOURCE_ONLY = 'datasource db {\n  provider = "postgresql"\n}\n';

/** Neither side of a filter is used: Chronos owns every table and enum of its database. */
export const NO_FILTERS: Glue.SchemaFilter = { externalTables: [], externalEnums: [] };

/** The part of the WebAssembly global used here (Node 20's type definitions do not declare it). */
interface WebAssemblyApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(
    module: WasmModule,
    imports: Record<string, object>,
  ): Promise<{ exports: Record<string, unknown> }>;
  RuntimeError: abstract new (...args: never[]) => Error;
}
type WasmModule = { readonly __brand: 'WebAssembly.Module' };
const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** One instance of the engine and the bookkeeping around it. */
interface Runtime {
  glue: GlueModule;
  /** Engines alive on this instance. */
  engines: number;
  /** Timers the engine started and never cleared. */
  timers: Set<ReturnType<typeof setTimeout>>;
}

const require = createRequire(import.meta.url);

let compiled: Promise<WasmModule> | undefined;
let current: Promise<Runtime> | undefined;
let instances = 0;

function gluePath(): string {
  return require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
}

function compileOnce(): Promise<WasmModule> {
  compiled ??= readFile(join(dirname(gluePath()), 'schema_engine_bg.wasm'))
    .then((bytes) => wasm.compile(bytes))
    .catch((error: unknown) => {
      compiled = undefined;
      throw error;
    });
  return compiled;
}

/**
 * The glue's exports, with its setTimeout binding tracked. The engine arms a 10 s timer against
 * its advisory-lock wait and never clears it, which would hold a finished process open for 10 s;
 * the timers still pending when the last engine is freed are cleared (see `release`).
 */
function importsFor(runtime: Runtime): Record<string, unknown> {
  const imports: Record<string, unknown> = { ...runtime.glue };
  for (const name of Object.keys(imports)) {
    if (!name.startsWith('__wbg_setTimeout_')) continue;
    imports[name] = (callback: () => void, ms: number) => {
      const timer = setTimeout(() => {
        runtime.timers.delete(timer);
        callback();
      }, ms >>> 0);
      runtime.timers.add(timer);
      return timer;
    };
  }
  return imports;
}

async function instantiate(): Promise<Runtime> {
  const module = await compileOnce();
  const url = pathToFileURL(gluePath());
  // The first instance uses the glue as installed; a replacement after a trap gets a fresh copy.
  if (instances > 0) url.search = `instance=${instances}`;
  instances += 1;
  const runtime: Runtime = { glue: (await import(url.href)) as GlueModule, engines: 0, timers: new Set() };
  const instance = await wasm.instantiate(module, { './schema_engine_bg.js': importsFor(runtime) });
  runtime.glue.__wbg_set_wasm(instance.exports);
  (instance.exports['__wbindgen_start'] as () => void)();
  return runtime;
}

function acquireRuntime(): Promise<Runtime> {
  current ??= instantiate().catch((error: unknown) => {
    current = undefined;
    throw error;
  });
  return current;
}

function release(runtime: Runtime): void {
  runtime.engines -= 1;
  if (runtime.engines > 0) return;
  for (const timer of runtime.timers) clearTimeout(timer);
  runtime.timers.clear();
}

/** A trapped instance (a Rust panic aborts) is unusable: the next engine gets a new one. */
async function discard(runtime: Runtime): Promise<void> {
  if (current !== undefined && (await current.catch(() => undefined)) === runtime) current = undefined;
}

function parseLogLine(line: string): EngineLogEvent | undefined {
  try {
    const event = JSON.parse(line) as { level?: unknown; fields?: { message?: unknown } };
    if (typeof event.level !== 'string' || typeof event.fields?.message !== 'string') return undefined;
    return { level: event.level, message: event.fields.message };
  } catch {
    return undefined;
  }
}

export interface SchemaEngineOptions {
  /** The database the engine talks to; wrapped with `bindMigrationAwareSqlAdapterFactory` here. */
  adapterFactory: SqlMigrationAwareDriverAdapterFactory;
  /** Receives the engine's log events. */
  onLog?: (event: EngineLogEvent) => void;
}

/**
 * Runs `use` with a schema engine connected through `adapterFactory` and frees the engine
 * afterwards. The WebAssembly module is compiled once per process and its instance is shared by
 * all engines; an instance that traps is replaced for later calls.
 */
export async function withSchemaEngine<T>(
  options: SchemaEngineOptions,
  use: (engine: SchemaEngine) => Promise<T>,
): Promise<T> {
  const runtime = await acquireRuntime();
  runtime.engines += 1;
  const onLog = (line: string): void => {
    const event = parseLogLine(line);
    if (event !== undefined) options.onLog?.(event);
  };
  let engine: SchemaEngine | undefined;
  try {
    engine = await runtime.glue.SchemaEngine.new(
      { datamodels: [['schema.prisma', DATASOURCE_ONLY]] },
      onLog,
      bindMigrationAwareSqlAdapterFactory(options.adapterFactory),
    );
    return await use(engine);
  } catch (error) {
    if (error instanceof wasm.RuntimeError) {
      engine = undefined; // freeing memory of a trapped instance could trap again
      await discard(runtime);
    }
    throw error;
  } finally {
    try {
      engine?.free();
    } catch {
      // "attempted to take ownership of Rust value while it was borrowed": a call into the engine
      // never returned (a Rust panic surfaces as a JS error mid-call). The instance is no longer
      // trustworthy; the error that matters is the one already thrown.
      await discard(runtime);
    }
    release(runtime);
  }
}
