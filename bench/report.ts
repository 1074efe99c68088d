/**
 * Shared output of the benchmark suites: aligned text tables on stdout, number formatting,
 * and the JSON result files under bench/results/ (gitignored).
 *
 * Every suite writes `<suite>-<timestamp>.json` (kept, one per run) and overwrites
 * `<suite>-latest.json`, so a later run can be compared against the previous one.
 */

import type { WorkerLayout } from '../src/node/options.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---- suites --------------------------------------------------------------------------------

/** What bench/main.ts hands to every suite. */
export type SuiteContext = {
  /** `--quick`: smaller sizes and shorter runs, for smoke runs. */
  readonly quick: boolean;
  /** Directory the JSON result files go to. */
  readonly outDir: string;
  /** `--worker-layout`: the layout of the haret nodes of the durable and recipes suites (absent: the node's default). */
  readonly workerLayout?: WorkerLayout;
};

/** A benchmark suite: measures, prints its tables and writes its result file. */
export type Suite = (context: SuiteContext) => void | Promise<void>;

/** bench/results/, next to this file, whatever the working directory. */
export const defaultOutDir = fileURLToPath(new URL('./results/', import.meta.url));

// ---- tables --------------------------------------------------------------------------------

export type Align = 'left' | 'right';

export type Column = {
  readonly header: string;
  /** Numbers read best right-aligned; the default is left. */
  readonly align?: Align;
};

/**
 * Formats rows as a plain-text table: a header, a rule, one line per row, every column as
 * wide as its widest cell and separated by two spaces. Rows shorter than the header are
 * padded with empty cells.
 */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    columns
      .map((column, i) => {
        const cell = cells[i] ?? '';
        const width = widths[i] ?? 0;
        return column.align === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(columns.map((column) => column.header)), rule, ...rows.map(line)].join('\n');
}

/** Prints a titled table to stdout, followed by a blank line. */
export function printTable(title: string, columns: readonly Column[], rows: readonly (readonly string[])[]): void {
  process.stdout.write(`${title}\n${formatTable(columns, rows)}\n\n`);
}

/** A progress line on stderr, so stdout carries only the tables. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

// ---- number formatting ---------------------------------------------------------------------

/** 1234567.8 → "1,234,568". */
export function formatInteger(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** A duration in nanoseconds with three significant digits: "41.2", "1,250", "0.48". */
export function formatNs(ns: number): string {
  if (ns >= 1000) return formatInteger(ns);
  return ns.toPrecision(3);
}

/** A duration in milliseconds: "0.84 ms", "312 ms", "12.3 s". */
export function formatMs(ms: number): string {
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** Bytes in binary units: "812 B", "97.7 KiB", "1.23 GiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

/** 100 → "100", 1000 → "1k", 100000 → "100k", 1000000 → "1M". */
export function formatSize(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n >= 1000 && n % 1000 === 0) return `${n / 1000}k`;
  return String(n);
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const upper = sorted[mid] ?? 0;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] ?? 0) + upper) / 2;
}

// ---- result files --------------------------------------------------------------------------

/** What JSON.stringify writes faithfully (no bigint, no undefined values in arrays). */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue | undefined };

export type MachineInfo = {
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly arch: string;
  readonly osRelease: string;
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly totalMemoryBytes: number;
};

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    osRelease: os.release(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryBytes: os.totalmem(),
  };
}

/** The command line of this process, as it could be typed again. */
export function commandLine(): string {
  return [process.execPath, ...process.execArgv, ...process.argv.slice(1)].join(' ');
}

/**
 * A filesystem-safe ISO 8601 timestamp in the basic format, e.g. "20250102T030405.678Z"
 * (the extended format's colons are not allowed in file names everywhere).
 */
export function fileTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '');
}

export type ResultFiles = { readonly path: string; readonly latestPath: string };

/**
 * Writes `<outDir>/<suite>-<timestamp>.json` and `<outDir>/<suite>-latest.json` with the
 * machine, the command line and the suite's own data (its options and rows), and returns
 * both paths. Creates `outDir` when missing.
 */
export function writeResults(
  outDir: string,
  suite: string,
  data: { readonly [key: string]: JsonValue | undefined },
  startedAt: Date,
): ResultFiles {
  const document = {
    suite,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command: commandLine(),
    argv: process.argv.slice(2),
    machine: machineInfo(),
    ...data,
  };
  const text = `${JSON.stringify(document, null, 2)}\n`;
  mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${suite}-${fileTimestamp(startedAt)}.json`);
  const latest = path.join(outDir, `${suite}-latest.json`);
  writeFileSync(file, text);
  writeFileSync(latest, text);
  return { path: file, latestPath: latest };
}
