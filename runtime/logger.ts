/**
 * pino logging (DESIGN.md "Logging"): one root logger per thread, children per actor, stable
 * snake_case event names as `msg`, data as fields. The level comes from the node's options or
 * HARET_LOG_LEVEL; tests pass `silent`. Lines go to stderr synchronously so a crashing worker
 * does not lose its last words and stdout stays free for the prompt.
 */

import { pino, type Logger } from 'pino';

export type { Logger };

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (logLevels as readonly string[]).includes(value);
}

/** The configured level, else HARET_LOG_LEVEL, else `warn`. */
export function resolveLogLevel(configured: LogLevel | undefined): LogLevel {
  if (configured !== undefined) return configured;
  const fromEnv = process.env['HARET_LOG_LEVEL'];
  return isLogLevel(fromEnv) ? fromEnv : 'warn';
}

export function makeLogger(level: LogLevel, bindings: Record<string, string | number>): Logger {
  return pino({ level, base: bindings }, pino.destination({ fd: 2, sync: true }));
}
