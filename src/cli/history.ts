/**
 * The prompt's history across sessions: a file of past command lines, oldest first, one a
 * line, at most `historyLinesMax` lines, readable by its owner only (lines may hold values).
 *
 * `haret cli` and `npm start` share ~/.haret_history (HARET_HISTORY_FILE overrides it, an
 * empty value turns it off); `haret admin` keeps ~/.haret_admin_history
 * (HARET_ADMIN_HISTORY_FILE). Two prompts open at once each write their own history last-wins,
 * like a shell without `histappend`.
 */

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The most lines a history keeps (in memory and in its file). */
export const historyLinesMax = 1000;

export type HistoryKind = 'cli' | 'admin';

const files: Readonly<Record<HistoryKind, { readonly variable: string; readonly name: string }>> = {
  cli: { variable: 'HARET_HISTORY_FILE', name: '.haret_history' },
  admin: { variable: 'HARET_ADMIN_HISTORY_FILE', name: '.haret_admin_history' },
};

/** Where a prompt keeps its history: the environment's choice, else a file in the home directory; null: nowhere. */
export function historyPath(kind: HistoryKind, env: NodeJS.ProcessEnv = process.env): string | null {
  const { variable, name } = files[kind];
  const chosen = env[variable];
  if (chosen !== undefined) return chosen === '' ? null : chosen;
  const home = homedir();
  return home === '' ? null : join(home, name);
}

/** The lines of a history file, newest first (readline's order), at most `max`; none when it does not exist. */
export function loadHistory(path: string, max = historyLinesMax): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .slice(-max)
    .reverse();
}

/**
 * Writes a history (newest first, as readline keeps it) to its file, the newest `max` lines
 * oldest first. Through a temporary file and a rename, so a crash never leaves half a history,
 * and created 0600 whatever the file had before.
 */
export function saveHistory(path: string, newestFirst: readonly string[], max = historyLinesMax): void {
  const lines = newestFirst
    .filter((line) => line.trim() !== '' && !line.includes('\n'))
    .slice(0, max)
    .reverse();
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, lines.length === 0 ? '' : `${lines.join('\n')}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
