/**
 * Shape checks for untrusted messages (src/vr/validate.ts `validateMessage`): every message
 * type is accepted in a valid form, every malformed one is refused with a reason, and the
 * validator never throws.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { protocolNumberMax } from '../../src/base/limits.ts';
import { checkpointTerms, decodeCheckpoint, encodeCheckpoint, packCheckpoint } from '../../src/vr/checkpoint.ts';
import { makeReplicaConfig, primaryOf } from '../../src/vr/config.ts';
import { initialReplicaState } from '../../src/vr/state.ts';
import type {
  CheckpointImage,
  Commit,
  DoViewChange,
  GetState,
  LogEntry,
  NewState,
  Prepare,
  PrepareOk,
  Recovery,
  RecoveryResponse,
  Request,
  StartView,
  StartViewChange,
} from '../../src/vr/messages.ts';
import { validateMessage } from '../../src/vr/validate.ts';

// n = 3; the validating replica is replica 1. View 3's primary is replica 0, view 5's is replica 2.
const config = makeReplicaConfig({ replicaCount: 3 });
const self = 1;

const register = (clientId = 'c1'): Request => ({ type: 'request', clientId, requestNum: 0, op: { type: 'register' } });
const create = (clientId = 'c1', requestNum = 1, path = '/a'): Request => ({
  type: 'request',
  clientId,
  requestNum,
  op: { type: 'tree', op: { type: 'create', path, nodeType: 'blob' } },
});

function entry(op: number, view = 0, requests: readonly Request[] = [create('c1', op)]): LogEntry {
  return { op, view, requests };
}

/** An image claiming op `op`; validateMessage only checks its shape, not its bytes. */
const imageAt = (op: number): CheckpointImage => ({ op, snapshot: new Uint8Array([1, 2, 3, 4]) });

const prepare = (): Prepare => ({ type: 'prepare', epoch: 0, view: 3, replica: 0, op: 4, commit: 2, entry: entry(4, 3), globalMinAccept: 1 });
const prepareOk = (): PrepareOk => ({ type: 'prepare_ok', epoch: 0, view: 3, replica: 2, op: 4 });
const commit = (): Commit => ({ type: 'commit', epoch: 0, view: 3, replica: 0, commit: 4, globalMinAccept: 2 });
const startViewChange = (): StartViewChange => ({ type: 'start_view_change', epoch: 0, view: 4, replica: 2 });
const doViewChange = (): DoViewChange => ({
  type: 'do_view_change',
  epoch: 0,
  view: 5, // primary of view 5 is replica 2; the sender is replica 0
  replica: 0,
  lastNormalView: 3,
  op: 4,
  commit: 2,
  logStart: 2,
  entries: [entry(3, 3), entry(4, 3)],
  checkpoint: null,
});
const startView = (): StartView => ({
  type: 'start_view',
  epoch: 0,
  view: 5,
  replica: 2,
  op: 4,
  commit: 3,
  logStart: 2,
  entries: [entry(3, 3), entry(4, 5)],
  checkpoint: null,
});
const recovery = (): Recovery => ({ type: 'recovery', epoch: 0, replica: 2, nonce: 99, committed: 0 });
const recoveryResponseEmpty = (): RecoveryResponse => ({ type: 'recovery_response', epoch: 0, view: 3, replica: 2, nonce: 99, state: null });
const recoveryResponseFull = (): RecoveryResponse => ({
  type: 'recovery_response',
  epoch: 0,
  view: 3,
  replica: 0,
  nonce: 99,
  state: { op: 2, commit: 1, logStart: 0, entries: [entry(1, 0, [register()]), entry(2, 3)], checkpoint: null },
});
const recoveryResponseWithCheckpoint = (): RecoveryResponse => ({
  ...recoveryResponseFull(),
  state: { op: 3, commit: 2, logStart: 1, entries: [entry(2, 3), entry(3, 3)], checkpoint: imageAt(1) },
});
const getState = (): GetState => ({ type: 'get_state', epoch: 0, view: 3, replica: 2, op: 1, whole: false });
const newState = (): NewState => ({ type: 'new_state', epoch: 0, view: 3, replica: 0, op: 4, commit: 4, logStart: 2, entries: [entry(3), entry(4)], checkpoint: null, whole: true });
const newStateWithCheckpoint = (): NewState => ({ ...newState(), checkpoint: imageAt(2) });

const validMessages: Record<string, () => unknown> = {
  prepare,
  prepare_ok: prepareOk,
  commit,
  start_view_change: startViewChange,
  do_view_change: doViewChange,
  'do_view_change with checkpoint': () => ({ ...doViewChange(), checkpoint: imageAt(2) }),
  start_view: startView,
  'start_view with checkpoint': () => ({ ...startView(), checkpoint: imageAt(2) }),
  recovery,
  'recovery_response without state': recoveryResponseEmpty,
  'recovery_response with state (log suffix)': recoveryResponseFull,
  'recovery_response with state (checkpoint and suffix)': recoveryResponseWithCheckpoint,
  'recovery with a committed op': () => ({ ...recovery(), committed: 12 }),
  get_state: getState,
  new_state: newState,
  'new_state with checkpoint': newStateWithCheckpoint,
  'new_state with no entries': () => ({ ...newState(), op: 2, commit: 2, entries: [] }),
  'request register': () => register(),
  'request tree': () => create(),
  'request with a 256-character client id': () => register('x'.repeat(256)),
};

const validate = (message: unknown): string | null => validateMessage(message, config, self);

function show(message: unknown): string {
  try {
    return JSON.stringify(message, (_k, v: unknown) => (v instanceof Uint8Array ? '<bytes>' : typeof v === 'bigint' ? String(v) : v)) ?? String(message);
  } catch {
    return '<unprintable>';
  }
}

function expectRejected(message: unknown, pattern?: RegExp): void {
  const reason = validate(message);
  expect(reason, `expected a rejection of ${show(message)}`).to.be.a('string');
  if (pattern !== undefined) expect(reason).to.match(pattern);
}

const messageTypes = [
  'prepare',
  'prepare_ok',
  'commit',
  'start_view_change',
  'do_view_change',
  'start_view',
  'recovery',
  'recovery_response',
  'get_state',
  'new_state',
  'request',
] as const;

describe('validateMessage (src/vr/validate.ts)', () => {
  describe('accepts every message type in a valid form', () => {
    for (const [name, make] of Object.entries(validMessages)) {
      it(name, () => {
        expect(validate(make())).to.equal(null);
      });
    }
  });

  describe('rejects', () => {
    it('non-objects', () => {
      for (const value of [null, undefined, 0, 1, 'prepare', true, Symbol('x'), 10n, () => 1]) {
        expect(validate(value), String(typeof value)).to.be.a('string');
      }
    });

    it('an unknown or missing type', () => {
      expectRejected({ type: 'hello', epoch: 0, replica: 0 }, /unknown message type/);
      expectRejected({ epoch: 0, replica: 0 }, /unknown message type/);
      expectRejected({ type: 7, epoch: 0, replica: 0 });
      expectRejected({}, /./);
      expectRejected([], /./);
    });

    it('negative, non-integer, unsafe or non-numeric counters', () => {
      const bad = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '3', null, undefined];
      const fieldsByType: [() => Record<string, unknown>, string[]][] = [
        [prepare, ['epoch', 'replica', 'view', 'op', 'commit', 'globalMinAccept']],
        [prepareOk, ['epoch', 'replica', 'view', 'op']],
        [commit, ['view', 'commit', 'globalMinAccept']],
        [startViewChange, ['view']],
        [doViewChange, ['view', 'lastNormalView', 'op', 'commit', 'logStart']],
        [startView, ['view', 'op', 'commit', 'logStart']],
        [recovery, ['nonce', 'epoch', 'committed']],
        [recoveryResponseEmpty, ['view', 'nonce']],
        [getState, ['view', 'op']],
        [newState, ['view', 'op', 'commit', 'logStart']],
      ];
      for (const [make, fields] of fieldsByType) {
        for (const field of fields) {
          for (const value of bad) expectRejected({ ...make(), [field]: value });
        }
      }
      expectRejected({ ...recoveryResponseFull(), state: { ...recoveryResponseFull().state, op: -1 } });
      expectRejected({ ...recoveryResponseFull(), state: { ...recoveryResponseFull().state, commit: 0.5 } });
    });

    it('a replica index out of range', () => {
      expectRejected({ ...prepareOk(), replica: 3 }, /out of range/);
      expectRejected({ ...prepareOk(), replica: 1000 }, /out of range/);
      expectRejected({ ...recovery(), replica: 3 }, /out of range/);
    });

    it('a message from self', () => {
      expectRejected({ ...prepareOk(), replica: self }, /from self/);
      expectRejected({ ...recovery(), replica: self }, /from self/);
    });

    it('a prepare or commit from a replica that is not the primary of its view', () => {
      expectRejected({ ...prepare(), replica: 2 }, /not the primary/);
      expectRejected({ ...prepare(), view: 4, entry: entry(4, 4) }, /not the primary/); // view 4's primary is replica 1
      expectRejected({ ...commit(), replica: 2 }, /not the primary/);
      expectRejected({ ...startView(), replica: 0 }, /not the primary/);
    });

    it('a prepare whose entry op does not match its op', () => {
      expectRejected({ ...prepare(), entry: entry(5, 3) }, /log entry op/);
      expectRejected({ ...prepare(), entry: entry(3, 3) }, /log entry op/);
      expectRejected({ ...prepare(), entry: { ...entry(4, 3), op: '4' } }, /log entry op/);
    });

    it('a prepare with an entry from a later view, no requests, or a commit not below its op', () => {
      expectRejected({ ...prepare(), entry: entry(4, 4) });
      expectRejected({ ...prepare(), entry: entry(4, 3, []) }, /no requests/);
      expectRejected({ ...prepare(), entry: null });
      expectRejected({ ...prepare(), commit: 4 });
      expectRejected({ ...prepare(), commit: 5 });
    });

    it('a do_view_change with lastNormalView beyond its view', () => {
      expectRejected({ ...doViewChange(), lastNormalView: 6 }, /lastNormalView beyond view/);
      expect(validate({ ...doViewChange(), lastNormalView: 5 })).to.equal(null);
    });

    it('a do_view_change sent by the would-be primary itself', () => {
      expectRejected({ ...doViewChange(), view: 3, entries: [entry(3, 3), entry(4, 3)] }, /would-be primary/);
    });

    it('a suffix whose op is not logStart + entries.length', () => {
      expectRejected({ ...doViewChange(), op: 5 }, /suffix op/);
      expectRejected({ ...doViewChange(), op: 3, commit: 2 }, /suffix op/);
      expectRejected({ ...startView(), op: 3 }, /suffix op/);
      expectRejected({ ...newState(), op: 5, commit: 4 }, /suffix op/);
    });

    it('a suffix whose entries are not numbered from logStart + 1, or whose commit is beyond op', () => {
      expectRejected({ ...doViewChange(), logStart: 1, op: 3 }, /log entry op/);
      expectRejected({ ...newState(), entries: [entry(4), entry(3)] }, /log entry op/);
      expectRejected({ ...startView(), commit: 5 });
      expectRejected({ ...doViewChange(), entries: 'nope' });
    });

    it('a suffix checkpoint that is not at logStart, or is not an image', () => {
      expectRejected({ ...newState(), checkpoint: imageAt(1) }, /checkpoint is not at logStart/);
      expectRejected({ ...doViewChange(), checkpoint: imageAt(3) }, /checkpoint is not at logStart/);
      expectRejected({ ...startView(), checkpoint: imageAt(0) }, /checkpoint is not at logStart/);
      expectRejected({ ...newState(), checkpoint: { op: 2, snapshot: [1, 2, 3] } });
      expectRejected({ ...newState(), checkpoint: { op: -2, snapshot: new Uint8Array(4) } });
      expectRejected({ ...newState(), checkpoint: 'image' });
    });

    it('a recovery_response state that is inconsistent', () => {
      const full = recoveryResponseWithCheckpoint();
      const state = full.state as NonNullable<RecoveryResponse['state']>;
      expectRejected({ ...full, state: { ...state, op: 4 } }, /suffix op/);
      expectRejected({ ...full, state: { ...state, commit: 4 } }, /commit beyond op/);
      expectRejected({ ...full, state: { ...state, checkpoint: imageAt(2) } }, /checkpoint is not at logStart/);
      expectRejected({ ...full, state: { ...state, logStart: 0 } });
      expectRejected({ ...full, state: { ...state, entries: undefined } });
      expectRejected({ ...full, state: 'state' });
    });

    it('requests with a malformed client id', () => {
      expectRejected({ ...register(), clientId: '' }, /clientId/);
      expectRejected({ ...register(), clientId: 'x'.repeat(257) }, /clientId/);
      expectRejected({ ...register(), clientId: 42 }, /clientId/);
      expectRejected({ type: 'request', requestNum: 0, op: { type: 'register' } }, /clientId/);
    });

    it('requests with a malformed request number or op', () => {
      expectRejected({ ...create(), requestNum: -1 }, /requestNum/);
      expectRejected({ ...create(), requestNum: 1.5 }, /requestNum/);
      expectRejected({ ...create(), requestNum: '1' }, /requestNum/);
      expectRejected({ ...create(), op: null }, /op must be an object/);
      expectRejected({ ...create(), op: { type: 'write' } }, /register, tree/);
    });

    it('a register with a request number other than 0', () => {
      expectRejected({ ...register(), requestNum: 1 }, /register must use request number 0/);
      expectRejected({ ...register(), requestNum: 7 }, /register must use request number 0/);
    });

    it('a tree request with request number 0', () => {
      expectRejected({ ...create(), requestNum: 0 }, /reserved for register/);
    });

    it('log entries holding a malformed tree op, or a malformed request', () => {
      const badOp: Request = { type: 'request', clientId: 'c1', requestNum: 4, op: { type: 'tree', op: { type: 'create', path: 'no-slash', nodeType: 'blob' } } };
      const unknownOp = { type: 'request', clientId: 'c1', requestNum: 4, op: { type: 'tree', op: { type: 'explode', path: '/a' } } };
      expectRejected({ ...prepare(), entry: entry(4, 3, [badOp]) }, /malformed tree op/);
      expectRejected({ ...prepare(), entry: { ...entry(4, 3), requests: [unknownOp] } }, /malformed tree op/);
      expectRejected({ ...prepare(), entry: entry(4, 3, [{ ...register(), requestNum: 3 }]) }, /register must use request number 0/);
      expectRejected({ ...prepare(), entry: { ...entry(4, 3), requests: [null] } });
      expectRejected({ ...newState(), entries: [entry(3), entry(4, 0, [badOp])] }, /malformed tree op/);
      expectRejected({ ...doViewChange(), entries: [entry(3, 3, [badOp]), entry(4, 3)] }, /malformed tree op/);
      expectRejected({ ...startView(), entries: [entry(3, 3), entry(4, 5, [badOp])] }, /malformed tree op/);
      const full = recoveryResponseFull();
      const state = full.state as NonNullable<RecoveryResponse['state']>;
      expectRejected({ ...full, state: { ...state, entries: [entry(1, 0, [badOp]), entry(2, 3)] } }, /malformed tree op/);
    });

    it('a message whose fields throw when read', () => {
      const hostile = new Proxy(
        {},
        {
          get() {
            throw new Error('boom');
          },
        },
      );
      expectRejected(hostile);
      const getter = Object.defineProperty({ ...prepareOk() }, 'op', {
        get() {
          throw new Error('boom');
        },
      });
      expectRejected(getter);
      expectRejected({ ...prepare(), entry: hostile });
      expectRejected({ ...create(), op: hostile });
    });
  });

  describe('log entries are checked against the group\'s tree limits (config.treeLimits), not the defaults', () => {
    // A namespace configured for 2 MiB values: its primary admits a 1.5 MiB put, so every
    // backup must accept the entry too (against the default 1 MiB it would refuse it forever).
    const big = makeReplicaConfig({ replicaCount: 3, treeLimits: { ...config.treeLimits, valueBytesMax: 2 * 1024 * 1024 } });
    const put: Request = { type: 'request', clientId: 'c1', requestNum: 4, op: { type: 'tree', op: { type: 'blob_put', path: '/b', value: new Uint8Array(1536 * 1024) } } };
    const small = makeReplicaConfig({ replicaCount: 3, treeLimits: { ...config.treeLimits, valueBytesMax: 1024 } });
    const carriers: Record<string, unknown> = {
      prepare: { ...prepare(), entry: entry(4, 3, [put]) },
      do_view_change: { ...doViewChange(), entries: [entry(3, 3), entry(4, 3, [put])] },
      start_view: { ...startView(), entries: [entry(3, 3), entry(4, 5, [put])] },
      new_state: { ...newState(), entries: [entry(3), entry(4, 0, [put])] },
      recovery_response: { ...recoveryResponseFull(), state: { op: 2, commit: 1, logStart: 0, entries: [entry(1, 0, [register()]), entry(2, 3, [put])], checkpoint: null } },
    };
    for (const [name, message] of Object.entries(carriers)) {
      it(`${name}: a 1.5 MiB value is accepted with valueBytesMax 2 MiB, refused with a smaller limit`, () => {
        expect(validateMessage(message, big, self)).to.equal(null);
        expect(validateMessage(message, config, self), 'default limits (1 MiB)').to.match(/malformed tree op/);
        expect(validateMessage(message, small, self), '1 KiB').to.match(/malformed tree op/);
      });
    }
  });

  describe('never throws (property)', () => {
    it('on fc.anything()', () => {
      fc.assert(
        fc.property(fc.anything({ withBigInt: true, withTypedArray: true, withNullPrototype: true, withMap: true, withSet: true, withDate: true }), (value) => {
          const reason = validate(value);
          return reason === null || typeof reason === 'string';
        }),
        { numRuns: 1000 },
      );
    });

    it('on random objects with a valid type and random fields', () => {
      const counter = fc.oneof(fc.nat(6), fc.integer({ min: -3, max: 3 }), fc.double(), fc.constant(null), fc.string({ maxLength: 3 }));
      const anyEntry = fc.record(
        { op: counter, view: counter, requests: fc.oneof(fc.anything(), fc.array(fc.anything(), { maxLength: 3 })) },
        { requiredKeys: [] },
      );
      const fields = fc.record(
        {
          epoch: counter,
          replica: counter,
          view: counter,
          // a counter for peer messages, a request op for requests
          op: fc.oneof(counter, fc.anything(), fc.record({ type: fc.constantFrom('register', 'tree', 'x'), op: fc.anything() })),
          commit: counter,
          globalMinAccept: counter,
          lastNormalView: counter,
          logStart: counter,
          nonce: counter,
          clientId: fc.oneof(fc.string({ maxLength: 4 }), fc.anything()),
          requestNum: counter,
          entry: fc.oneof(anyEntry, fc.anything()),
          entries: fc.oneof(fc.array(anyEntry, { maxLength: 3 }), fc.anything()),
          checkpoint: fc.oneof(fc.constant(null), fc.record({ op: counter, snapshot: fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.anything()) }), fc.anything()),
          state: fc.oneof(fc.constant(null), fc.anything(), fc.record({ op: counter, commit: counter, checkpoint: fc.anything(), entries: fc.anything() })),
        },
        { requiredKeys: [] },
      );
      fc.assert(
        fc.property(fc.constantFrom(...messageTypes), fields, (type, rest) => {
          const reason = validate({ ...rest, type });
          return reason === null || typeof reason === 'string';
        }),
        { numRuns: 2000 },
      );
    });

    it('on valid messages with one field replaced by anything', () => {
      const makers = Object.values(validMessages);
      fc.assert(
        fc.property(fc.integer({ min: 0, max: makers.length - 1 }), fc.nat(), fc.anything(), (which, fieldIndex, value) => {
          const message = (makers[which] as () => Record<string, unknown>)();
          const keys = Object.keys(message);
          const key = keys[fieldIndex % keys.length] as string;
          const reason = validate({ ...message, [key]: value });
          return reason === null || typeof reason === 'string';
        }),
        { numRuns: 2000 },
      );
    });
  });

  describe('protocol numbers are bounded (protocolNumberMax = 2^48; README rule 17, issue 12)', () => {
    // Each case builds a message, consistent in every other respect, whose one named field holds
    // `v`; `field` is how the refusal names it. The sender of a view-bound message is the
    // primary of that view, so the validating replica is chosen as one that is not the sender.
    const body = (): Request => create('c1', 1);
    const emptySuffix = (v: number) => ({ op: v, commit: 0, logStart: v, entries: [], checkpoint: null });
    const cases: [string, (v: number) => Record<string, unknown>, RegExp][] = [
      ['prepare.view', (v) => ({ ...prepare(), view: v, replica: primaryOf(v, config) }), /^prepare\.view /],
      ['prepare.op (and its entry)', (v) => ({ ...prepare(), op: v, entry: entry(v, 3, [body()]) }), /^prepare\.op /],
      ['prepare.globalMinAccept', (v) => ({ ...prepare(), globalMinAccept: v }), /^prepare\.globalMinAccept /],
      ['prepare.epoch', (v) => ({ ...prepare(), epoch: v }), /^prepare\.epoch /],
      ['log entry view', (v) => ({ ...prepare(), view: v, replica: primaryOf(v, config), entry: entry(4, v, [body()]) }), /view /],
      ['log entry request number', (v) => ({ ...prepare(), entry: entry(4, 3, [create('c1', v)]) }), /^request\.requestNum /],
      ['prepare_ok.view', (v) => ({ ...prepareOk(), view: v }), /^prepare_ok\.view /],
      ['prepare_ok.op', (v) => ({ ...prepareOk(), op: v }), /^prepare_ok\.op /],
      ['commit.view', (v) => ({ ...commit(), view: v, replica: primaryOf(v, config) }), /^commit\.view /],
      ['commit.commit', (v) => ({ ...commit(), commit: v }), /^commit\.commit /],
      ['commit.globalMinAccept', (v) => ({ ...commit(), globalMinAccept: v }), /^commit\.globalMinAccept /],
      ['start_view_change.view', (v) => ({ ...startViewChange(), view: v }), /^start_view_change\.view /],
      ['start_view_change.epoch', (v) => ({ ...startViewChange(), epoch: v }), /^start_view_change\.epoch /],
      ['do_view_change.view', (v) => ({ ...doViewChange(), view: v }), /^do_view_change\.view /],
      ['do_view_change.lastNormalView', (v) => ({ ...doViewChange(), view: v, lastNormalView: v }), /^do_view_change\.(view|lastNormalView) /],
      ['do_view_change.op and logStart', (v) => ({ ...doViewChange(), ...emptySuffix(v) }), /^do_view_change\.op /],
      ['do_view_change.commit', (v) => ({ ...doViewChange(), ...emptySuffix(protocolNumberMax), commit: v }), /^do_view_change\.commit /],
      ['do_view_change.logStart', (v) => ({ ...doViewChange(), op: protocolNumberMax, commit: 0, logStart: v, entries: [] }), /^do_view_change\.logStart /],
      ['start_view.view', (v) => ({ ...startView(), view: v, replica: primaryOf(v, config) }), /^start_view\.view /],
      ['start_view.op and logStart', (v) => ({ ...startView(), ...emptySuffix(v) }), /^start_view\.op /],
      ['start_view.commit', (v) => ({ ...startView(), ...emptySuffix(protocolNumberMax), commit: v }), /^start_view\.commit /],
      ['start_view.checkpoint.op', (v) => ({ ...startView(), op: protocolNumberMax, commit: 0, logStart: protocolNumberMax, entries: [], checkpoint: imageAt(v) }), /^start_view\.checkpoint\.op /],
      ['recovery.nonce', (v) => ({ ...recovery(), nonce: v }), /^recovery\.nonce /],
      ['recovery.committed', (v) => ({ ...recovery(), committed: v }), /^recovery\.committed /],
      ['recovery.epoch', (v) => ({ ...recovery(), epoch: v }), /^recovery\.epoch /],
      ['recovery_response.view', (v) => ({ ...recoveryResponseEmpty(), view: v }), /^recovery_response\.view /],
      ['recovery_response.nonce', (v) => ({ ...recoveryResponseEmpty(), nonce: v }), /^recovery_response\.nonce /],
      [
        'recovery_response.state op and logStart',
        (v) => ({ ...recoveryResponseFull(), state: emptySuffix(v) }),
        /^recovery_response\.state\.op /,
      ],
      [
        'recovery_response.state.commit',
        (v) => ({ ...recoveryResponseFull(), state: { ...emptySuffix(protocolNumberMax), commit: v } }),
        /^recovery_response\.state\.commit /,
      ],
      [
        'recovery_response.state.logStart',
        (v) => ({ ...recoveryResponseFull(), state: { op: protocolNumberMax, commit: 0, logStart: v, entries: [], checkpoint: null } }),
        /^recovery_response\.state\.logStart /,
      ],
      [
        'recovery_response.state.checkpoint.op',
        (v) => ({ ...recoveryResponseFull(), state: { op: protocolNumberMax, commit: 0, logStart: protocolNumberMax, entries: [], checkpoint: imageAt(v) } }),
        /^recovery_response\.state\.checkpoint\.op /,
      ],
      ['get_state.view', (v) => ({ ...getState(), view: v }), /^get_state\.view /],
      ['get_state.op', (v) => ({ ...getState(), op: v }), /^get_state\.op /],
      ['new_state.view', (v) => ({ ...newState(), view: v }), /^new_state\.view /],
      ['new_state.op and logStart', (v) => ({ ...newState(), ...emptySuffix(v) }), /^new_state\.op /],
      ['new_state.commit', (v) => ({ ...newState(), ...emptySuffix(protocolNumberMax), commit: v }), /^new_state\.commit /],
      ['new_state.logStart', (v) => ({ ...newState(), op: protocolNumberMax, commit: 0, logStart: v, entries: [] }), /^new_state\.logStart /],
      [
        'new_state.checkpoint.op',
        (v) => ({ ...newState(), op: protocolNumberMax, commit: 0, logStart: protocolNumberMax, entries: [], checkpoint: imageAt(v) }),
        /^new_state\.checkpoint\.op /,
      ],
      ['request.requestNum', (v) => create('c1', v), /^request\.requestNum /],
    ];
    /** A replica that is not the message's sender validates it. */
    const validateAsOther = (message: Record<string, unknown>): string | null => {
      const sender = message['replica'];
      return validateMessage(message, config, sender === 1 ? 2 : 1);
    };

    it('protocolNumberMax is 2^48, far inside 2^53', () => {
      expect(protocolNumberMax).to.equal(2 ** 48);
      expect(Number.isSafeInteger(protocolNumberMax * 16 + 1)).to.equal(true);
    });

    for (const [name, make, field] of cases) {
      it(`${name}: accepted at protocolNumberMax, refused at protocolNumberMax + 1 and 2^53 - 1`, () => {
        expect(validateAsOther(make(protocolNumberMax)), 'at the bound').to.equal(null);
        for (const value of [protocolNumberMax + 1, 2 ** 53 - 1]) {
          const reason = validateAsOther(make(value));
          expect(reason, `${value}`).to.be.a('string');
          expect(reason).to.match(/beyond the protocol maximum 2\^48/);
          expect(reason).to.match(field);
        }
      });
    }

    it('checkpoint images: a client record\'s request number beyond the bound is refused by decodeCheckpoint', () => {
      const machine = initialReplicaState(config, 0, 1).machine;
      expect(decodeCheckpoint(encodeCheckpoint(machine)).ok).to.equal(true);
      const tree = checkpointTerms(machine).tree;
      for (const [requestNum, accepted] of [[protocolNumberMax, true], [protocolNumberMax + 1, false], [2 ** 53 - 1, false]] as const) {
        const image = packCheckpoint({ appliedOp: 0, tree, clients: [['c1', { requestNum, reply: null, replyOp: 0, lastActiveOp: 0 }]], leases: checkpointTerms(machine).leases });
        const decoded = decodeCheckpoint(image);
        expect(decoded.ok, `requestNum ${requestNum}`).to.equal(accepted);
        if (!decoded.ok) expect(decoded.reason).to.match(/requestNum is beyond the protocol maximum/);
      }
    });
  });
});
