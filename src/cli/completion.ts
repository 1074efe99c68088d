/**
 * TAB in the prompt: the command word completes from the command names; a path argument
 * (a word starting with /) from `list` of its parent directory; the word after `help` from the
 * command names again.
 *
 * A path completion asks the node, so it is bounded twice: it waits at most `timeoutMs` (a
 * slow node must not freeze typing: readline holds the keyboard while it completes) and
 * offers at most `hitsMax` names.
 */

import type { CallResult } from '../client/io.ts';
import type { TreeOp } from '../tree/ops.ts';

export const completionTimeoutMs = 500;
export const completionHitsMax = 100;

/** Readline's completer result: the candidates and the text they replace. */
export type Completion = [string[], string];

export type CompletionOptions = {
  /** Command names (and aliases) to offer. */
  readonly names: readonly string[];
  /** Runs a `list` for a path completion; absent, paths are not completed. */
  readonly execute?: (op: TreeOp) => Promise<CallResult>;
  readonly timeoutMs?: number;
  readonly hitsMax?: number;
};

/** The children of `dir` (their absolute paths), or null when the node did not answer in time or refused. */
async function childrenOf(dir: string, execute: (op: TreeOp) => Promise<CallResult>, timeoutMs: number): Promise<string[] | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  try {
    // The list goes on after a timeout; nobody waits for it and it changes nothing.
    const listed = execute({ type: 'list', path: dir, recursive: false }).catch(() => null);
    const result = await Promise.race([listed, late]);
    if (result === null || result.type !== 'done' || result.outcome.type !== 'list') return null;
    return result.outcome.entries.map((entry) => entry.path);
  } finally {
    clearTimeout(timer);
  }
}

function commandHits(word: string, names: readonly string[]): string[] {
  const lower = word.toLowerCase();
  return names.filter((name) => name.startsWith(lower));
}

export async function completeLine(line: string, options: CompletionOptions): Promise<Completion> {
  const { names } = options;
  const start = line.trimStart();
  if (!/\s/.test(start)) {
    const hits = commandHits(start, names);
    return [hits.length > 0 ? hits : [...names], start];
  }
  const word = /(\S*)$/.exec(line)?.[1] ?? '';
  const command = start.split(/\s+/)[0]?.toLowerCase();
  if (command === 'help' || command === '?') return [commandHits(word, names), word];
  if (!word.startsWith('/') || options.execute === undefined) return [[], word];
  const slash = word.lastIndexOf('/');
  const dir = slash === 0 ? '/' : word.slice(0, slash);
  const children = await childrenOf(dir, options.execute, options.timeoutMs ?? completionTimeoutMs);
  if (children === null) return [[], word];
  const hits = children.filter((path) => path.startsWith(word)).slice(0, options.hitsMax ?? completionHitsMax);
  return [hits, word];
}
