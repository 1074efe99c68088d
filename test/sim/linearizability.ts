/**
 * A linearizability checker for histories recorded by the simulator.
 *
 * A history is a set of operations, each with the logical time it was invoked (`call`), the
 * time its response reached the client (`ret`) and that response. The history is linearizable
 * when every operation can be given a single instant between its call and its return such that
 * applying the operations one by one, in the order of those instants, to a sequential
 * specification (a {@link Model}) produces exactly the recorded responses.
 *
 * The search is the Wing & Gong backtracking search with Lowe's memoisation, as popularised by
 * porcupine:
 *
 * - the call and return events are kept in a doubly linked list sorted by time; the candidates
 *   to linearize next are the calls that precede the first return still in the list (an
 *   operation whose return has been reached must already have taken effect);
 * - linearizing an operation unlinks its call and return ("lift"); backtracking relinks them in
 *   reverse order ("unlift"), so the list never has to be rebuilt;
 * - a configuration is the set of linearized operations plus the model state; the search
 *   continuation depends on nothing else, so a configuration already visited is never explored
 *   again. This turns the factorial Wing & Gong search into one bounded by the number of
 *   distinct configurations, which is small for histories with little concurrency;
 * - the backtracking stack is an explicit array: histories of thousands of operations would
 *   overflow the JavaScript call stack with a recursive search;
 * - when the model can split operations into independent sub-histories (P-compositionality:
 *   a history is linearizable iff each sub-history of each independent object is), every part
 *   is checked on its own, which shrinks the exponent of the search to the concurrency within
 *   one part.
 *
 * Time convention: at equal times, returns come before calls. An operation returning at tick
 * `t` happened before any operation called at tick `t`; the two are not concurrent. Recorders
 * whose clock cannot guarantee that a response delivered at `t` was seen before a request sent
 * at `t` must give the later call a strictly greater time.
 *
 * Cost: checking is NP-complete in general, and the search is exponential in the number of
 * operations of one partition that are concurrent with each other. Histories with a handful of
 * concurrent operations per partition check in milliseconds even when they are thousands of
 * operations long; around twenty concurrent writers on one register can exhaust the budget,
 * which is reported as `'unknown'`, never as a verdict.
 *
 * Pending operations (the client never saw a response: it crashed, timed out, or the
 * simulation ended) are recorded with `ret = Infinity` and `output = PENDING`. Such an
 * operation may have taken effect at any instant after its call, or never: the checker tries
 * both. Its effect is computed by {@link Model.stepPending}, since there is no response to check.
 */

// ---- public API ----------------------------------------------------------------------------

/** Marks the output of an operation whose response was never received. */
export const PENDING: unique symbol = Symbol('linearizability.pending');

/** A sequential specification. */
export interface Model<S, I, O> {
  /** The state of the object before any operation. */
  init(): S;
  /**
   * Apply input to state; return whether `output` is what the sequential object would answer,
   * and the next state. Must not mutate `state`: the search keeps earlier states to backtrack to.
   */
  step(state: S, input: I, output: O): { ok: boolean; state: S };
  /**
   * The effect of an operation whose response is unknown. Required when the history contains
   * pending operations: dropping them instead would be unsound, since a pending write may well
   * have taken effect and been observed by later reads.
   */
  stepPending?(state: S, input: I): S;
  /** Canonical key of a state for memoisation (equal states => equal keys). */
  key(state: S): string;
  /**
   * Optional: split a history into independent sub-histories (e.g. by path). Each operation
   * goes to every partition whose key is returned for its input (an empty list drops it). The
   * split is only sound when operations of different partitions never affect each other's
   * results. If absent, the whole history is one partition, reported as `''`.
   */
  partition?(input: I): readonly string[];
  /** Human-readable rendering of a completed operation, for counterexamples. */
  describe?(input: I, output: O): string;
}

/**
 * One operation of a history. `call`/`ret` are logical times (ticks or step counters) with
 * `call < ret`; a pending operation has `ret = Infinity` and `output = PENDING`.
 */
export type Operation<I, O> = {
  clientId: string | number;
  input: I;
  call: number;
  ret: number;
  output: O | typeof PENDING;
};

export type CheckResult =
  | { linearizable: true; explored: number }
  | {
      linearizable: false;
      explored: number;
      /** Key of the partition with no linearization (`''` without partitioning). */
      partition: string;
      /** Where the search got stuck, in words. */
      reason: string;
      /** The operations of the failing partition, in call order; `#n` in `reason` indexes this. */
      ops: string[];
    }
  | { linearizable: 'unknown'; explored: number; reason: string };

export type CheckOptions = {
  /**
   * Give up (result `'unknown'`) after this many model steps over all partitions, so that a
   * pathological history cannot hang a test run.
   */
  maxExplored?: number;
};

export const DEFAULT_MAX_EXPLORED = 5_000_000;

/**
 * Decides whether `history` is linearizable with respect to `model`. `explored` counts model
 * steps attempted by the search. Partitions are checked smallest first, so that a violation in
 * a small partition is found before the budget is spent on a large one.
 *
 * @throws RangeError for malformed operations (non-finite call, `ret <= call`, a pending marker
 *   without `ret = Infinity` or the converse) or a negative `maxExplored`.
 * @throws Error when the history has pending operations and the model has no `stepPending`.
 */
export function checkHistory<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult {
  history.forEach(validateOperation);
  const step = makeStepper(model, history);
  const maxExplored = options.maxExplored ?? DEFAULT_MAX_EXPLORED;
  if (!(maxExplored >= 0)) throw new RangeError(`maxExplored must be a non-negative number, got ${maxExplored}`);
  let explored = 0;
  for (const [partition, ops] of partitionsSmallestFirst(model, history)) {
    const outcome = new PartitionSearch(model, step, ops).run(maxExplored - explored);
    explored += outcome.explored;
    if (outcome.kind === 'violation') {
      return {
        linearizable: false,
        explored,
        partition,
        reason: explainViolation(model, partition, ops, outcome),
        ops: ops.map((op, index) => formatOperation(model, op, index)),
      };
    }
    if (outcome.kind === 'exhausted') {
      return {
        linearizable: 'unknown',
        explored,
        reason: `gave up in partition ${JSON.stringify(partition)} (${ops.length} operations) after ${explored} steps (maxExplored = ${maxExplored})`,
      };
    }
  }
  return { linearizable: true, explored };
}

// ---- input handling ------------------------------------------------------------------------

function isPending<I, O>(op: Operation<I, O>): boolean {
  return op.output === PENDING;
}

function validateOperation<I, O>(op: Operation<I, O>, index: number): void {
  const where = `operation ${index} (client ${String(op.clientId)})`;
  if (!Number.isFinite(op.call)) {
    throw new RangeError(`${where}: call time must be finite, got ${op.call}`);
  }
  if (isPending(op)) {
    if (op.ret !== Infinity) {
      throw new RangeError(`${where}: a pending operation must have ret = Infinity, got ${op.ret}`);
    }
    return;
  }
  if (!Number.isFinite(op.ret)) {
    throw new RangeError(`${where}: ret must be finite; mark a missing response with output PENDING`);
  }
  if (!(op.call < op.ret)) {
    throw new RangeError(`${where}: call (${op.call}) must be before ret (${op.ret})`);
  }
}

/** Steps one operation: checks completed ones against their output, applies pending ones blindly. */
type Stepper<S, I, O> = (state: S, op: Operation<I, O>) => { ok: boolean; state: S };

function makeStepper<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[]): Stepper<S, I, O> {
  const stepPending = model.stepPending;
  if (stepPending === undefined && history.some(isPending)) {
    throw new Error(
      'the history has pending operations but the model has no stepPending: a pending operation may have taken effect, so it cannot be ignored',
    );
  }
  return (state, op) => {
    if (op.output !== PENDING) return model.step(state, op.input, op.output);
    if (stepPending === undefined) throw new Error('unreachable: pending operation without stepPending');
    return { ok: true, state: stepPending.call(model, state, op.input) };
  };
}

/** Splits the history by `model.partition`; each part is sorted by call time (stable). */
function partitionsSmallestFirst<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
): [string, Operation<I, O>[]][] {
  const parts = new Map<string, Operation<I, O>[]>();
  for (const op of history) {
    const keys = model.partition === undefined ? [''] : new Set(model.partition(op.input));
    for (const key of keys) {
      const part = parts.get(key);
      if (part === undefined) parts.set(key, [op]);
      else part.push(op);
    }
  }
  for (const part of parts.values()) part.sort((a, b) => a.call - b.call);
  return [...parts].sort((a, b) => a[1].length - b[1].length);
}

// ---- event list ----------------------------------------------------------------------------

/**
 * A call or return event in the doubly linked list. The head sentinel and every entry point
 * `prev` at a real entry (the head at itself), so relinking needs no null checks on `prev`.
 */
class Entry {
  readonly op: number;
  readonly isCall: boolean;
  /** For a call, its return; for a return (and the head), itself. */
  match: Entry = this;
  prev: Entry = this;
  next: Entry | null = null;

  constructor(op: number, isCall: boolean) {
    this.op = op;
    this.isCall = isCall;
  }
}

type Event = { readonly time: number; readonly isCall: boolean; readonly op: number };

/** Orders by time; at equal times returns before calls (see the module comment), then by op. */
function compareEvents(a: Event, b: Event): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1; // no subtraction: Infinity - Infinity is NaN
  if (a.isCall !== b.isCall) return a.isCall ? 1 : -1;
  return a.op - b.op;
}

/** Builds the sorted event list of `ops` and returns its head sentinel. */
function buildEventList<I, O>(ops: readonly Operation<I, O>[]): Entry {
  const events: Event[] = [];
  ops.forEach((op, index) => {
    events.push({ time: op.call, isCall: true, op: index });
    events.push({ time: op.ret, isCall: false, op: index });
  });
  events.sort(compareEvents);

  const head = new Entry(-1, false);
  const calls = new Map<number, Entry>();
  let last = head;
  for (const event of events) {
    const entry = new Entry(event.op, event.isCall);
    if (event.isCall) calls.set(event.op, entry);
    else calls.get(event.op)!.match = entry; // a call sorts before its return since call < ret
    entry.prev = last;
    last.next = entry;
    last = entry;
  }
  return head;
}

/** Unlinks a call and its return: the operation is linearized. */
function lift(call: Entry): void {
  const ret = call.match;
  call.prev.next = call.next;
  if (call.next !== null) call.next.prev = call.prev;
  ret.prev.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Exactly undoes the matching {@link lift}, which must be the most recent one not yet undone. */
function unlift(call: Entry): void {
  const ret = call.match;
  ret.prev.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev.next = call;
  if (call.next !== null) call.next.prev = call;
}

// ---- memoisation ---------------------------------------------------------------------------

/** Spreads an op index over 32 bits (murmur3 finaliser) for the incremental set hash. */
function mixIndex(index: number): number {
  let h = Math.imul(index + 1, 0x9e3779b1);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * The set of linearized operations, with a hash kept up to date on every change (XOR of the
 * members' mixed indexes), so that looking a configuration up costs O(1) instead of O(ops).
 */
class Bitset {
  readonly words: Uint32Array;
  hash = 0;

  constructor(size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  add(index: number): void {
    const w = index >>> 5;
    this.words[w] = (this.words[w] ?? 0) | (1 << (index & 31));
    this.hash ^= mixIndex(index);
  }

  delete(index: number): void {
    const w = index >>> 5;
    this.words[w] = (this.words[w] ?? 0) & ~(1 << (index & 31));
    this.hash ^= mixIndex(index);
  }

  equals(words: Uint32Array): boolean {
    return this.words.every((word, i) => word === words[i]);
  }
}

/** Configurations (linearized set, model state) already explored. */
class VisitedSet {
  readonly #buckets = new Map<string, Uint32Array[]>();

  /** Records a configuration; returns false if it had been recorded before. */
  add(linearized: Bitset, stateKey: string): boolean {
    const key = `${linearized.hash}:${stateKey}`;
    const bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      this.#buckets.set(key, [linearized.words.slice()]);
      return true;
    }
    if (bucket.some((seen) => linearized.equals(seen))) return false;
    bucket.push(linearized.words.slice());
    return true;
  }
}

// ---- search --------------------------------------------------------------------------------

type SearchOutcome =
  | { kind: 'linearizable'; explored: number }
  | { kind: 'exhausted'; explored: number }
  | {
      kind: 'violation';
      explored: number;
      /** The longest sequence of operations (indexes) the search managed to linearize. */
      prefix: readonly number[];
      /** The operation whose return blocked that prefix from growing. */
      stuck: number;
    };

/** A linearized operation on the backtracking stack, with the state from before it. */
type Frame<S> = { readonly call: Entry; readonly stateBefore: S };

/** The iterative Wing & Gong / Lowe search over one partition. */
class PartitionSearch<S, I, O> {
  readonly #model: Model<S, I, O>;
  readonly #step: Stepper<S, I, O>;
  readonly #ops: readonly Operation<I, O>[];
  readonly #head: Entry;
  readonly #linearized: Bitset;
  readonly #visited = new VisitedSet();
  readonly #stack: Frame<S>[] = [];
  #state: S;
  /** Completed operations not yet linearized; pending ones may stay out, so they don't count. */
  #completedLeft: number;
  #explored = 0;
  #bestPrefix: readonly number[] = [];
  #stuck = -1;

  constructor(model: Model<S, I, O>, step: Stepper<S, I, O>, ops: readonly Operation<I, O>[]) {
    this.#model = model;
    this.#step = step;
    this.#ops = ops;
    this.#head = buildEventList(ops);
    this.#linearized = new Bitset(ops.length);
    this.#state = model.init();
    this.#completedLeft = ops.filter((op) => !isPending(op)).length;
  }

  run(budget: number): SearchOutcome {
    let entry = this.#head.next;
    while (this.#completedLeft > 0) {
      if (entry === null) throw new Error('unreachable: event list ended before every operation returned');
      if (entry.isCall) {
        if (this.#explored >= budget) return { kind: 'exhausted', explored: this.#explored };
        entry = this.#tryLinearize(entry) ? this.#head.next : entry.next;
      } else {
        const undone = this.#backtrack(entry);
        if (undone === null) {
          return { kind: 'violation', explored: this.#explored, prefix: this.#bestPrefix, stuck: this.#stuck };
        }
        entry = undone.next;
      }
    }
    return { kind: 'linearizable', explored: this.#explored };
  }

  /** Linearizes `call` next if the model accepts it and the result is a new configuration. */
  #tryLinearize(call: Entry): boolean {
    this.#explored++;
    const op = this.#ops[call.op]!;
    const result = this.#step(this.#state, op);
    if (!result.ok) return false;
    this.#linearized.add(call.op);
    if (!this.#visited.add(this.#linearized, this.#model.key(result.state))) {
      this.#linearized.delete(call.op);
      return false;
    }
    this.#stack.push({ call, stateBefore: this.#state });
    this.#state = result.state;
    lift(call);
    if (!isPending(op)) this.#completedLeft--;
    return true;
  }

  /**
   * Reached the return of an operation not yet linearized: the current prefix cannot be
   * extended, so undo its last operation. Returns the restored call (the search resumes with
   * the candidate after it), or null when there is nothing left to undo.
   */
  #backtrack(blockingReturn: Entry): Entry | null {
    this.#recordProgress(blockingReturn);
    const frame = this.#stack.pop();
    if (frame === undefined) return null;
    this.#state = frame.stateBefore;
    this.#linearized.delete(frame.call.op);
    unlift(frame.call);
    if (!isPending(this.#ops[frame.call.op]!)) this.#completedLeft++;
    return frame.call;
  }

  /** Remembers the deepest dead end, for the counterexample. Copies at most once per depth. */
  #recordProgress(blockingReturn: Entry): void {
    if (this.#stuck !== -1 && this.#stack.length <= this.#bestPrefix.length) return;
    this.#bestPrefix = this.#stack.map((frame) => frame.call.op);
    this.#stuck = blockingReturn.op;
  }
}

// ---- reporting -----------------------------------------------------------------------------

function explainViolation<S, I, O>(
  model: Model<S, I, O>,
  partition: string,
  ops: readonly Operation<I, O>[],
  outcome: { prefix: readonly number[]; stuck: number },
): string {
  const { prefix, stuck } = outcome;
  const shown = prefix.slice(-5).map((index) => `#${index}`);
  const ending = prefix.length === 0 ? '' : ` (ending ${prefix.length > 5 ? '..., ' : ''}${shown.join(', ')})`;
  return (
    `partition ${JSON.stringify(partition)}: none of the orders of its ${ops.length} operations is consistent with the model. ` +
    `The longest linearizable prefix found has ${prefix.length} operation(s)${ending}; ` +
    `after it, ${formatOperation(model, ops[stuck]!, stuck)} has returned and so must have taken effect, ` +
    `but no operation still open can be applied next in a way that leads to a full linearization.`
  );
}

function formatOperation<S, I, O>(model: Model<S, I, O>, op: Operation<I, O>, index: number): string {
  const interval = `[${op.call}, ${op.output === PENDING ? '∞' : op.ret}]`;
  let what: string;
  if (op.output === PENDING) what = `${formatValue(op.input)} -> (pending)`;
  else if (model.describe !== undefined) what = model.describe(op.input, op.output);
  else what = `${formatValue(op.input)} -> ${formatValue(op.output)}`;
  return `#${index} client ${String(op.clientId)} ${interval} ${what}`;
}

function formatValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'symbol' || typeof value === 'function') return String(value);
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(value);
  } catch {
    return String(value); // cycles
  }
}
