/**
 * Runs a set of actors on one thread: a mailbox each, one drain loop, one transport. Envelopes
 * arrive from the transport; the drain hands each actor everything waiting for it (up to
 * `drainMax`) in one `receive` call, so a replica steps a whole batch in one transition, then
 * flushes the transport so every envelope produced goes out in one post per destination.
 */

import type { Actor, ActorContext, ActorFactory, ActorSpec, ActorStatus } from './actor.ts';
import type { ActorId, Envelope } from './envelope.ts';
import type { Logger } from './logger.ts';
import { Mailbox } from './mailbox.ts';
import type { Offload } from './offload.ts';
import type { Transport } from './transport.ts';

export const defaultMailboxCapacity = 100_000;
/**
 * Envelopes handed to one actor per drain pass; the rest wait for the next pass, after the
 * router has flushed what this pass produced. Smaller passes let the next thread start on the
 * first part of a burst while this one works on the rest (a pipeline instead of a convoy);
 * measured with 1,024 closed-loop callers, 4,096 -> 128 raised puts/s by about 15%.
 */
export const drainMax = 128;
/**
 * Passes one drain may run back to back while its own flush hands envelopes to actors of this
 * thread (a primary's prepares to its backups in the `single` layout, their prepare_oks back).
 * Each further pass would otherwise wait for the next turn of the event loop, which is one more
 * epoll syscall and one more timers-and-check round per hop. Measured with a lock cycle over
 * TCP against the `single` layout, paired 1-s windows: 13-17% more cycles per second. Bounded,
 * so that envelopes from other threads and sockets are read at least every this many passes.
 */
export const localPassesMax = 8;

type Slot = { readonly id: ActorId; readonly actor: Actor; readonly mailbox: Mailbox; processed: number };

export type FaultHook = () => void;

/**
 * On a worker of one actor, the actor's throw is left uncaught: it kills the worker and the
 * supervisor restarts it. On the host thread the process must survive, and on a worker of
 * several actors the others should (containCrashes), so a crash handler is given: the throwing
 * actor is removed (its mailbox with it; envelopes for it wait, bounded, for its successor),
 * its `stop()` is started, and the handler decides what comes next; `stopped` settles when
 * that stop has finished (a successor must not start before, e.g. over the same files).
 */
export type CrashHandler = (actor: ActorId, error: unknown, stopped: Promise<void>) => void;

/** How long a crashed actor's stop() may take before its crash handler stops waiting for it. */
export const crashedStopMs = 5_000;

/**
 * Whether a crashed actor's `stopped` settled within crashedStopMs ('late' if not), for a
 * crash handler that must not re-create the actor before it stopped. `unref`: the wait does not
 * keep the thread's event loop alive by itself (the host thread, which may be exiting).
 */
export function crashedStopOutcome(stopped: Promise<void>, options: { readonly unref: boolean }): Promise<'stopped' | 'late'> {
  let timer: NodeJS.Timeout | null = null;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), crashedStopMs);
    if (options.unref) timer.unref();
  });
  return Promise.race([stopped.then(() => 'stopped' as const), late]).then((outcome) => {
    if (timer !== null) clearTimeout(timer);
    return outcome;
  });
}

export class ActorHost {
  readonly #thread: string;
  readonly #log: Logger;
  readonly #offload: Offload;
  #transport: Transport | null = null;
  readonly #slots = new Map<ActorId, Slot>();
  /** Envelopes that arrived before their actor was created (start-up), bounded like a mailbox. */
  readonly #early = new Map<ActorId, Mailbox>();
  #drainScheduled = false;
  /** True while a pass runs: envelopes delivered then were sent by this thread's own actors. */
  #inDrain = false;
  #deliveredLocally = false;
  #unknownActor = 0;
  /** Test hook: run inside the next drain, as if an actor's handler did it. */
  #fault: FaultHook | null = null;
  readonly #onCrash: CrashHandler | null;

  constructor(thread: string, log: Logger, offload: Offload, onCrash: CrashHandler | null = null) {
    this.#thread = thread;
    this.#log = log;
    this.#offload = offload;
    this.#onCrash = onCrash;
  }

  attach(transport: Transport): void {
    this.#transport = transport;
  }

  /** Drops an actor and its mailbox (after a crash on the host thread); envelopes for it wait for its successor. */
  async remove(id: ActorId): Promise<void> {
    const slot = this.#slots.get(id);
    if (slot === undefined) return;
    this.#slots.delete(id);
    await slot.actor.stop?.();
  }

  has(id: ActorId): boolean {
    return this.#slots.has(id);
  }

  /** Imports the actor's module and creates it; envelopes that arrived early are then delivered. */
  async spawn(spec: ActorSpec): Promise<void> {
    const module = (await import(spec.module)) as { createActor?: ActorFactory };
    if (typeof module.createActor !== 'function') throw new TypeError(`${spec.module} does not export createActor`);
    await this.add(spec.id, module.createActor, spec.init, spec.mailboxCapacity);
  }

  async add(id: ActorId, factory: ActorFactory, init: unknown, capacity = defaultMailboxCapacity): Promise<void> {
    const context: ActorContext = {
      self: id,
      thread: this.#thread,
      send: (to, msg, control) => this.#send(control === true ? { from: id, to, msg, control } : { from: id, to, msg }),
      log: this.#log.child({ actor: id }),
      offload: this.#offload,
    };
    const actor = await factory(context, init);
    const mailbox = this.#early.get(id) ?? new Mailbox(capacity);
    this.#early.delete(id);
    this.#slots.set(id, { id, actor, mailbox, processed: 0 });
    if (mailbox.depth > 0) this.#scheduleDrain();
  }

  /**
   * Router callback: queue each envelope in its actor's mailbox. `local`: sent on this thread
   * and handed over by the transport's own flush. Outside a drain (the router's flush at the
   * check phase, after a socket's data was forwarded) the drain then runs as soon as that flush
   * returns, in the same phase: from there a setImmediate would wait a whole turn of the event
   * loop (one more epoll call per request on a main_thread node).
   */
  deliver(batch: readonly Envelope[], local = false): void {
    for (const envelope of batch) {
      const slot = this.#slots.get(envelope.to);
      if (slot !== undefined) {
        slot.mailbox.push(envelope);
        continue;
      }
      // Not created yet (still importing its module): hold a bounded number of envelopes.
      let early = this.#early.get(envelope.to);
      if (early === undefined) {
        if (this.#transport?.hostOf(envelope.to) !== this.#thread) {
          this.#unknownActor += 1;
          continue;
        }
        early = new Mailbox(defaultMailboxCapacity);
        this.#early.set(envelope.to, early);
      }
      early.push(envelope);
    }
    // Delivered by this thread's own flush inside a drain: that drain goes on (or schedules
    // the next one) itself, so no extra turn of the event loop is queued here.
    if (this.#inDrain) this.#deliveredLocally = true;
    else if (local) this.#scheduleDrainSoon();
    else this.#scheduleDrain();
  }

  /** Test hook for the host thread: the actor's next batch throws inside its handler. */
  crashNext(id: ActorId): void {
    const slot = this.#slots.get(id);
    if (slot === undefined) throw new RangeError(`no actor ${id} on ${this.#thread}`);
    const actor = slot.actor;
    const receive = actor.receive.bind(actor);
    actor.receive = () => {
      actor.receive = receive;
      throw new Error(`injected fault in ${id}`);
    };
    slot.mailbox.push({ from: id, to: id, msg: null, control: true });
    this.#scheduleDrain();
  }

  injectFault(hook: FaultHook): void {
    this.#fault = hook;
    this.#scheduleDrain();
  }

  status(): ActorStatus[] {
    return [...this.#slots.values()].map((slot) => ({
      id: slot.id,
      mailbox: slot.mailbox.stats(),
      processed: slot.processed,
      status: slot.actor.status?.() ?? null,
    }));
  }

  inspect(id: ActorId): unknown {
    const slot = this.#slots.get(id);
    if (slot === undefined) throw new RangeError(`no actor ${id} on ${this.#thread}`);
    return slot.actor.inspect?.() ?? slot.actor.status?.() ?? null;
  }

  query(id: ActorId, request: unknown): unknown {
    const slot = this.#slots.get(id);
    if (slot === undefined) throw new RangeError(`no actor ${id} on ${this.#thread}`);
    if (slot.actor.query === undefined) throw new RangeError(`actor ${id} answers no queries`);
    return slot.actor.query(request);
  }

  unknownActorDrops(): number {
    return this.#unknownActor;
  }

  async stop(): Promise<void> {
    for (const slot of this.#slots.values()) await slot.actor.stop?.();
    this.#slots.clear();
  }

  #send(envelope: Envelope): void {
    if (this.#transport === null) throw new Error('actor host has no transport');
    this.#transport.send(envelope);
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    setImmediate(() => this.#drain());
  }

  /** A drain right after the current callback (see deliver); at most one is scheduled either way. */
  #scheduleDrainSoon(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    process.nextTick(() => this.#drain());
  }

  #drain(): void {
    if (!this.#drainScheduled) return;
    this.#drainScheduled = false;
    for (let pass = 1; ; pass += 1) {
      this.#deliveredLocally = false;
      this.#inDrain = true;
      let more: boolean;
      try {
        more = this.#drainPass();
      } finally {
        this.#inDrain = false;
      }
      // Go on at once only for work this thread just made for itself (see localPassesMax);
      // a backlog from elsewhere waits for the next turn, as it always has.
      if (more && this.#deliveredLocally && pass < localPassesMax) continue;
      if (more) this.#scheduleDrain();
      return;
    }
  }

  /** One pass over the mailboxes, then the transport's flush; true when a mailbox still holds envelopes. */
  #drainPass(): boolean {
    const fault = this.#fault;
    if (fault !== null) {
      this.#fault = null;
      // Outside every actor's handler: it takes the thread down even where actors' throws are
      // contained (only workers inject faults; see WorkerControl.injectFault).
      fault();
    }
    let more = false;
    for (const slot of this.#slots.values()) {
      if (slot.mailbox.depth === 0) continue;
      const batch = slot.mailbox.take(drainMax);
      slot.processed += batch.length;
      if (this.#onCrash === null) {
        slot.actor.receive(batch);
      } else {
        try {
          slot.actor.receive(batch);
        } catch (error) {
          this.#slots.delete(slot.id);
          let stopped: Promise<void>;
          try {
            stopped = Promise.resolve(slot.actor.stop?.()).catch(() => undefined);
          } catch {
            stopped = Promise.resolve();
          }
          this.#onCrash(slot.id, error, stopped);
          continue;
        }
      }
      if (slot.mailbox.depth > 0) more = true;
    }
    this.#transport?.flush();
    if (!this.#deliveredLocally) return more;
    for (const slot of this.#slots.values()) if (slot.mailbox.depth > 0) return true;
    return more;
  }
}
