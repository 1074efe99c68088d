/**
 * The admin prompt's language (`haret admin`): one line to one admin query, and how answers
 * look in each output form. Pure: no I/O.
 */

import type { AdminAnswer } from '../api/admin_wire.ts';
import { formatAddress, parseAddress } from '../net/address.ts';
import type { AdminQuery } from '../net/admin_client.ts';
import { formatActorLine, type ActorLine } from './node_prompt.ts';
import { base64, type Json } from './result_forms.ts';
import { nearest } from './suggest.ts';

export const adminHelp = `admin commands:
  status              every actor: worker state, restarts, role, status, view, op, commit
  health              whether the node serves, and one line per problem (a failed actor, a
                      failing disk, a namespace that cannot recover)
  namespaces          the namespaces this node serves
  primary NS          the replica that is primary of NS
  replica ACTOR       a replica's protocol state (e.g. replica default/r0)
  config              the node's resolved options
  metrics             per worker: heap, transport, event loop, mailboxes
  cluster join ADDR   join the cluster of the node whose cluster address is ADDR
  cluster status      members (with their addresses and link state) and namespaces
  namespace create NS [REPLICAS] [NODE,NODE,...]
                      a namespace of REPLICAS (default 3) replicas across the members
  namespace list      the same as namespaces
  snapshot save NS FILE
                      a backup of NS (its committed state, checksummed) written to FILE here;
                      haret start --restore NS=FILE seeds a new namespace from it
  help, quit`;

/** Every admin command word, for completion and "did you mean". */
export const adminCommandNames: readonly string[] = ['status', 'health', 'namespaces', 'namespace', 'primary', 'replica', 'config', 'metrics', 'cluster', 'snapshot', 'help', 'quit', 'exit'];

/** `snapshot save NS FILE`: the query, and where the client writes the answer. */
export type SnapshotSave = { readonly type: 'snapshot'; readonly ns: string; readonly file: string };

export type AdminLine =
  | { readonly type: 'query'; readonly query: AdminQuery }
  | { readonly type: 'save'; readonly save: SnapshotSave }
  | { readonly type: 'help' }
  | { readonly type: 'quit' }
  | { readonly type: 'empty' }
  | { readonly type: 'error'; readonly message: string };

const usage = (message: string): AdminLine => ({ type: 'error', message });

/** An address as `haret start` takes it (`:7201` is 127.0.0.1:7201), as host:port; null when it is none. */
function dialAddress(text: string): string | null {
  try {
    const address = parseAddress(text, true);
    return address.port === 0 ? null : formatAddress(address);
  } catch {
    return null;
  }
}

/** One admin command line to a query, or what is wrong with it. */
export function parseAdminCommand(line: string): AdminLine {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return { type: 'empty' };
  const words = trimmed.split(/\s+/);
  const [command, arg, third, fourth] = words as [string, ...(string | undefined)[]];
  const query = (value: AdminQuery): AdminLine => ({ type: 'query', query: value });
  switch (command.toLowerCase()) {
    case 'help':
    case '?':
      return { type: 'help' };
    case 'quit':
    case 'exit':
      return { type: 'quit' };
    case 'status':
    case 'health':
    case 'namespaces':
    case 'config':
    case 'metrics': {
      const type = command.toLowerCase() as 'status' | 'health' | 'namespaces' | 'config' | 'metrics';
      return words.length > 1 ? usage(`${type} takes no arguments`) : query({ type });
    }
    case 'primary':
      return arg === undefined || third !== undefined ? usage('usage: primary NS') : query({ type: 'primary', ns: arg });
    case 'replica':
      return arg === undefined || third !== undefined ? usage('usage: replica ACTOR') : query({ type: 'replica', actor: arg });
    case 'cluster':
      if (arg === 'status' && third === undefined) return query({ type: 'cluster_status' });
      if (arg === 'join' && third !== undefined && fourth === undefined) {
        const address = dialAddress(third);
        return address === null ? usage(`cluster join: ${third} is not an address (host:port, or :port for 127.0.0.1)`) : query({ type: 'cluster_join', address });
      }
      return usage('usage: cluster join ADDR | cluster status');
    case 'snapshot':
      if (arg !== 'save' || third === undefined || fourth === undefined || words.length > 4) return usage('usage: snapshot save NS FILE');
      return { type: 'save', save: { type: 'snapshot', ns: third, file: fourth } };
    case 'namespace': {
      if (arg === 'list' && third === undefined) return query({ type: 'namespaces' });
      if (arg !== 'create' || third === undefined || words.length > 5) return usage('usage: namespace create NS [REPLICAS] [NODE,NODE,...] | namespace list');
      const replicas = fourth === undefined || fourth.includes(',') || !/^\d+$/.test(fourth) ? 3 : Number(fourth);
      const nodeList = words.slice(4).join(',') || (fourth !== undefined && !/^\d+$/.test(fourth) ? fourth : '');
      return query({ type: 'namespace_create', ns: third, replicas, nodes: nodeList.split(',').filter((node) => node.length > 0) });
    }
    default: {
      const suggestion = nearest(command.toLowerCase(), adminCommandNames);
      return usage(`unknown admin command ${command}${suggestion === null ? '' : ` (did you mean ${suggestion}?)`}; try help`);
    }
  }
}

/** An answer in the human form: status and health as lines, anything else as indented JSON. */
export function formatAdminAnswer(query: AdminQuery, answer: AdminAnswer): string {
  if (answer.type === 'error') return `error: ${answer.message} (${answer.code})`;
  if (query.type === 'health' && typeof answer.value === 'object' && answer.value !== null) {
    const health = answer.value as { serving?: unknown; problems?: unknown };
    const problems = Array.isArray(health.problems) ? health.problems.map((line) => `  - ${String(line)}`) : [];
    return [health.serving === true ? 'serving' : 'not serving', ...problems].join('\n');
  }
  if (query.type === 'status' && Array.isArray(answer.value)) {
    return (answer.value as ActorLine[]).map(formatActorLine).join('\n');
  }
  return JSON.stringify(answer.value, bytesAsBase64, 2);
}

/** JSON.stringify's replacer for answers: bytes as base64, as everywhere in the CLI's JSON. */
export function bytesAsBase64(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? base64(value) : value;
}

/** An answer's value as JSON (bytes in base64). */
export function adminValueJson(value: unknown): Json {
  return JSON.parse(JSON.stringify(value ?? null, bytesAsBase64)) as Json;
}

/**
 * `-o value`: a string as it is, a number or boolean as text, a list of those one a line,
 * anything else as one line of JSON.
 */
export function adminValueLines(value: unknown): string[] {
  const scalar = (item: unknown): item is string | number | boolean => typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean';
  if (scalar(value)) return [String(value)];
  if (Array.isArray(value) && value.every(scalar)) return value.map(String);
  return [JSON.stringify(value ?? null, bytesAsBase64)];
}
