/**
 * The cluster: which nodes belong to it and which namespaces are placed across them, kept by a
 * host-thread actor (`host/cluster`) on every node. Nodes tell each other through the same
 * envelopes as everything else, carried by the cluster links (src/net/cluster_link.ts).
 *
 * Addresses across nodes. Replica ids of a cluster namespace (`ns/r1`) are unique in the
 * cluster and routed to the node that hosts them. Every other actor id is local to its node
 * (each node has its own `proxy`, `host/net`, `host/cluster`), so an envelope leaving a node
 * gets its sender qualified with the node's name (`a::proxy`); an answer to `a::proxy` is
 * routed to node a, which strips its own prefix on arrival. A node accepts from a link only
 * envelopes for its own actors whose sender is the linked node's (its prefix, or a replica it
 * hosts): a peer cannot make one node relay to another, nor speak for a third.
 *
 * Membership. `join(address)`: this node dials the address and sends `join` with its own
 * member record; the node joined adds it and sends its whole state to every member. Members
 * merge states (a union) and pass on any state that taught them something, so everyone
 * converges. Namespaces: `createNamespace` places replica i on a member, starts the local ones
 * and sends `namespace_created` to the others, whose replicas then start fresh. A node that
 * learns of a namespace otherwise (a state, or its own record after a restart) starts its
 * replicas recovering (VRR §4.3): it cannot know that it never held them, and a replica that
 * forgot what it acknowledged must not vote as if it had not.
 *
 * Trust (issue 12). The links authenticate every peer's name (src/net/cluster_link.ts), and
 * `onLinkEnvelopes` accepts only envelopes sent as that node's actors. Cluster messages are
 * taken only from another node's cluster actor (`b::host/cluster`), and a join only for the
 * sender itself. What a message carries is bounded: at most membersMax members and
 * clusterNamespacesMax namespaces in a state, at most replicaCountMax replicas a namespace,
 * and at most localReplicasMax replicas of cluster namespaces on one node: the creator refuses
 * a namespace that would place more on any member, and a node refuses (traced, counted) a
 * namespace from a peer that would place more on itself. Without that cap a member could
 * make another start 64 x 9 replica workers (~34 MiB each, ~19 GiB).
 */

import type { ActorId, Envelope } from '../../runtime/envelope.ts';
import type { Logger } from '../../runtime/logger.ts';
import { ClusterError } from '../api/admin_wire.ts';
import type { ClusterLinks } from '../net/cluster_link.ts';
import { clusterNamespacesMax, isNodeName, localReplicasMax, membersMax, parseMember, parseNamespace, replicaCountMax, saveRecord, type ClusterMember, type ClusterNamespace, type ClusterRecord } from './cluster_store.ts';
import { replicaId } from './layout.ts';

export const clusterActorId = 'host/cluster';
const separator = '::';

/** The router's thread name for another node's link. */
export function nodeThread(node: string): string {
  return `node:${node}`;
}

/** For the host router: `b::proxy` lives behind node b's link. */
export function remoteThreadOf(actor: ActorId): string | undefined {
  const at = actor.indexOf(separator);
  return at > 0 ? nodeThread(actor.slice(0, at)) : undefined;
}

export type ClusterMessage =
  | { readonly type: 'join'; readonly member: ClusterMember }
  | { readonly type: 'state'; readonly members: readonly ClusterMember[]; readonly namespaces: readonly ClusterNamespace[] }
  | { readonly type: 'namespace_created'; readonly namespace: ClusterNamespace };

export type ReplicaStart = 'fresh' | 'recovering';

/** What the cluster needs from its node. */
export type ClusterNodeHooks = {
  /** Delivers envelopes from another node into this node's mesh. */
  receive(batch: readonly Envelope[]): void;
  /** Sends an envelope from the cluster actor (routed like any other). */
  send(envelope: Envelope): void;
  /** True when an actor runs on this node (on any of its threads). */
  isLocal(actor: ActorId): boolean;
  addRemoteRoutes(entries: readonly (readonly [ActorId, string])[]): void;
  setLink(thread: string, sink: (batch: readonly Envelope[]) => void): void;
  /** A namespace of the node's own (not a cluster one): names must not collide. */
  hasLocalNamespace(name: string): boolean;
  /** Starts this node's replicas of a namespace and tells its proxy and client API about it. */
  startNamespace(namespace: ClusterNamespace, start: ReplicaStart): Promise<void>;
};

export type ClusterStatus = {
  readonly self: ClusterMember;
  readonly members: readonly (ClusterMember & { readonly link: 'self' | 'up' | 'down' })[];
  readonly namespaces: readonly ClusterNamespace[];
  readonly counters: Readonly<Record<string, number>>;
};

const joinTimeoutMs = 10_000;

export class Cluster {
  readonly self: ClusterMember;
  readonly #links: ClusterLinks;
  readonly #hooks: ClusterNodeHooks;
  readonly #dataDir: string | null;
  readonly #log: Logger;
  readonly #members = new Map<string, ClusterMember>();
  readonly #namespaces = new Map<string, ClusterNamespace>();
  /** Replica ids of every cluster namespace: the ids that are the same on every node. */
  readonly #global = new Set<ActorId>();
  readonly #memberWaiters = new Map<string, (() => void)[]>();
  readonly counters = { envelopesIn: 0, envelopesOut: 0, refusedIn: 0, messages: 0, badMessages: 0, refusedNamespaces: 0 };

  constructor(self: ClusterMember, links: ClusterLinks, hooks: ClusterNodeHooks, dataDir: string | null, log: Logger) {
    this.self = self;
    this.#links = links;
    this.#hooks = hooks;
    this.#dataDir = dataDir;
    this.#log = log;
    this.#members.set(self.name, self);
  }

  /** What the host actor `host/cluster` receives: other nodes' cluster messages. */
  receive(batch: readonly Envelope[]): void {
    for (const envelope of batch) this.#onMessage(envelope);
  }

  /** The host actor's status. */
  actorStatus(): Record<string, unknown> {
    return { role: 'cluster', members: this.#members.size, namespaces: this.#namespaces.size, ...this.counters };
  }

  /** Restores a record (after a restart): dials every member, starts local replicas recovering. */
  async restore(record: ClusterRecord): Promise<void> {
    for (const member of record.members) if (member.name !== this.self.name) this.#addMember(member);
    for (const namespace of record.namespaces) await this.#addNamespace(namespace, 'recovering');
    this.#persist();
    this.#broadcastState();
  }

  /** Envelopes that arrived on a link from node `from`. */
  onLinkEnvelopes(from: string, batch: readonly Envelope[]): void {
    const ownPrefix = `${this.self.name}${separator}`;
    const peerPrefix = `${from}${separator}`;
    const accepted: Envelope[] = [];
    for (const envelope of batch) {
      const to = envelope.to.startsWith(ownPrefix) ? envelope.to.slice(ownPrefix.length) : envelope.to;
      const fromPeer = envelope.from.startsWith(peerPrefix) || this.#hostOfReplica(envelope.from) === from;
      if (!fromPeer || !this.#hooks.isLocal(to)) {
        this.counters.refusedIn += 1;
        continue;
      }
      accepted.push(to === envelope.to ? envelope : { from: envelope.from, to, msg: envelope.msg });
    }
    this.counters.envelopesIn += accepted.length;
    if (accepted.length > 0) this.#hooks.receive(accepted);
  }

  /** Joins the cluster of the node listening at `address`; resolves once it has answered. */
  async join(address: string): Promise<{ readonly node: string }> {
    const node = await this.#links.dial(address);
    if (node === this.self.name) throw new ClusterError('invalid', 'that address is this node');
    const known = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ClusterError('timeout', `${node} did not answer the join within ${joinTimeoutMs} ms`)), joinTimeoutMs);
      const waiters = this.#memberWaiters.get(node) ?? [];
      waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.#memberWaiters.set(node, waiters);
    });
    this.#installLink(node);
    this.#sendTo(node, { type: 'join', member: this.self });
    await known;
    return { node };
  }

  /**
   * Creates a namespace of `replicas` replicas placed on `nodes` (replica i on nodes[i mod n]),
   * by default on the members in name order, starting at a rotating offset so that different
   * namespaces' first primaries land on different nodes.
   */
  async createNamespace(name: string, replicas = 3, nodes?: readonly string[]): Promise<ClusterNamespace> {
    const checked = parseNamespace({ name, nodes: Array.from({ length: replicas }, () => this.self.name) });
    if (checked === null) throw new ClusterError('invalid', `namespace ${JSON.stringify(name)}: a name of 1-64 letters, digits, '_', '.', '-' and an odd number of replicas from 1 to ${replicaCountMax}`);
    if (this.#namespaces.has(name) || this.#hooks.hasLocalNamespace(name)) throw new ClusterError('namespace_exists', `namespace ${name} exists`);
    if (this.#namespaces.size >= clusterNamespacesMax) throw new ClusterError('invalid', `a cluster holds at most ${clusterNamespacesMax} namespaces`);
    const candidates = nodes === undefined || nodes.length === 0 ? [...this.#members.keys()].sort() : [...nodes];
    for (const node of candidates) if (!this.#members.has(node)) throw new ClusterError('unknown_node', `${node} is not a member of the cluster`);
    const offset = nodes === undefined || nodes.length === 0 ? this.#namespaces.size % candidates.length : 0;
    const placed = Array.from({ length: replicas }, (_, i) => candidates[(offset + i) % candidates.length] as string);
    const namespace: ClusterNamespace = { name, nodes: placed };
    // Every member applies the cap to itself (#addNamespace): the creator checks all of them, so none refuses.
    for (const node of new Set(placed)) {
      if (this.#replicasOn(node) + countOf(placed, node) > localReplicasMax) {
        throw new ClusterError('invalid', `${node} would host more than ${localReplicasMax} replicas of cluster namespaces`);
      }
    }
    await this.#addNamespace(namespace, 'fresh');
    this.#persist();
    for (const member of this.#members.keys()) if (member !== this.self.name) this.#sendTo(member, { type: 'namespace_created', namespace });
    return namespace;
  }

  /** Whether a replica can be reached from here (local, or its node's link is up) and where its node serves clients. */
  locate(replica: ActorId): { readonly reachable: boolean; readonly clientAddress: string | null } {
    const node = this.#hostOfReplica(replica);
    if (node === undefined || node === this.self.name) return { reachable: true, clientAddress: this.self.clientAddress };
    return { reachable: this.#links.isUp(node), clientAddress: this.#members.get(node)?.clientAddress ?? null };
  }

  namespace(name: string): ClusterNamespace | undefined {
    return this.#namespaces.get(name);
  }

  get namespaces(): readonly ClusterNamespace[] {
    return [...this.#namespaces.values()];
  }

  member(name: string): ClusterMember | undefined {
    return this.#members.get(name);
  }

  status(): ClusterStatus {
    return {
      self: this.self,
      members: [...this.#members.values()].map((member) => ({ ...member, link: member.name === this.self.name ? 'self' : this.#links.isUp(member.name) ? 'up' : 'down' })),
      namespaces: this.namespaces,
      counters: { ...this.counters },
    };
  }

  /** The sink behind `node:<name>`: qualifies local senders and hands the batch to the link. */
  #installLink(node: string): void {
    this.#hooks.setLink(nodeThread(node), (batch) => {
      for (const envelope of batch) {
        const from = envelope.from.includes(separator) || this.#global.has(envelope.from) ? envelope.from : `${this.self.name}${separator}${envelope.from}`;
        this.counters.envelopesOut += 1;
        this.#links.send(node, from === envelope.from ? envelope : { from, to: envelope.to, msg: envelope.msg });
      }
    });
  }

  #hostOfReplica(actor: ActorId): string | undefined {
    if (!this.#global.has(actor)) return undefined;
    const slash = actor.lastIndexOf('/r');
    const namespace = this.#namespaces.get(actor.slice(0, slash));
    return namespace?.nodes[Number(actor.slice(slash + 2))];
  }

  #addMember(member: ClusterMember): boolean {
    const known = this.#members.get(member.name);
    if (member.name === this.self.name) return false;
    // The newest incarnation of a member wins; an older or equal one teaches nothing.
    if (known !== undefined && member.incarnation <= known.incarnation) return false;
    if (known === undefined && this.#members.size >= membersMax) {
      this.counters.badMessages += 1;
      return false;
    }
    if (known !== undefined && known.clusterAddress !== member.clusterAddress) this.#links.forget(known.clusterAddress);
    this.#members.set(member.name, member);
    this.#installLink(member.name);
    // The first handshake may fail while the peer is down: the link keeps redialling.
    this.#links.dial(member.clusterAddress).catch(() => undefined);
    for (const waiter of this.#memberWaiters.get(member.name) ?? []) waiter();
    this.#memberWaiters.delete(member.name);
    return true;
  }

  /** Replicas of the known cluster namespaces placed on `node`. */
  #replicasOn(node: string): number {
    let count = 0;
    for (const namespace of this.#namespaces.values()) count += countOf(namespace.nodes, node);
    return count;
  }

  async #addNamespace(namespace: ClusterNamespace, start: ReplicaStart): Promise<boolean> {
    if (this.#namespaces.has(namespace.name)) return false;
    if (this.#namespaces.size >= clusterNamespacesMax) {
      this.counters.badMessages += 1;
      this.counters.refusedNamespaces += 1;
      this.#log.warn({ namespace: namespace.name, namespacesMax: clusterNamespacesMax }, 'cluster_namespace_refused');
      return false;
    }
    const local = countOf(namespace.nodes, this.self.name);
    if (local > 0 && this.#replicasOn(this.self.name) + local > localReplicasMax) {
      this.counters.refusedNamespaces += 1;
      this.#log.warn({ namespace: namespace.name, replicas: local, localReplicasMax }, 'cluster_namespace_refused');
      return false;
    }
    if (this.#hooks.hasLocalNamespace(namespace.name)) {
      this.#log.error({ namespace: namespace.name }, 'cluster_namespace_collides_with_local');
      return false;
    }
    this.#namespaces.set(namespace.name, namespace);
    const remote: [ActorId, string][] = [];
    namespace.nodes.forEach((node, index) => {
      const id = replicaId(namespace.name, index);
      this.#global.add(id);
      if (node !== this.self.name) remote.push([id, nodeThread(node)]);
    });
    this.#hooks.addRemoteRoutes(remote);
    await this.#hooks.startNamespace(namespace, start);
    return true;
  }

  #onMessage(envelope: Envelope): void {
    const at = envelope.from.indexOf(separator);
    const sender = at > 0 ? envelope.from.slice(0, at) : null;
    const message = envelope.msg as Partial<ClusterMessage> | null;
    // Only another node's cluster actor speaks for its node (its proxy or a replica does not),
    // and never as this node: the link already proved `sender` (onLinkEnvelopes).
    if (sender === null || !isNodeName(sender) || sender === this.self.name || envelope.from !== `${sender}${separator}${clusterActorId}` || typeof message !== 'object' || message === null) {
      this.counters.badMessages += 1;
      this.#log.warn({ from: envelope.from.slice(0, 200) }, 'cluster_message_refused');
      return;
    }
    this.counters.messages += 1;
    switch (message.type) {
      case 'join': {
        const member = parseMember(message.member);
        if (member === null || member.name !== sender) {
          this.counters.badMessages += 1;
          return;
        }
        if (this.#addMember(member)) this.#persist();
        // Everyone (the newcomer too) learns the whole state, whether or not it changed.
        this.#broadcastState();
        return;
      }
      case 'state':
        void this.#merge(message.members, message.namespaces).catch((error: unknown) => this.#log.error({ error: String(error) }, 'cluster_merge_failed'));
        return;
      case 'namespace_created': {
        const namespace = parseNamespace(message.namespace);
        if (namespace === null) {
          this.counters.badMessages += 1;
          return;
        }
        void this.#addNamespace(namespace, 'fresh').then(
          (added) => {
            if (added) this.#persist();
          },
          (error: unknown) => this.#log.error({ error: String(error), namespace: namespace.name }, 'cluster_namespace_start_failed'),
        );
        return;
      }
      default:
        this.counters.badMessages += 1;
    }
  }

  async #merge(members: unknown, namespaces: unknown): Promise<void> {
    // A state holds at most what a cluster may hold: no walk over a peer's million-entry array.
    if (!Array.isArray(members) || !Array.isArray(namespaces) || members.length > membersMax || namespaces.length > clusterNamespacesMax) {
      this.counters.badMessages += 1;
      return;
    }
    let changed = false;
    for (const value of members) {
      const member = parseMember(value);
      if (member === null) this.counters.badMessages += 1;
      else if (this.#addMember(member)) changed = true;
    }
    for (const value of namespaces) {
      const namespace = parseNamespace(value);
      if (namespace === null) this.counters.badMessages += 1;
      else if (await this.#addNamespace(namespace, 'recovering')) changed = true;
    }
    if (!changed) return;
    this.#persist();
    this.#broadcastState();
  }

  #broadcastState(): void {
    const message: ClusterMessage = { type: 'state', members: [...this.#members.values()], namespaces: this.namespaces };
    for (const member of this.#members.keys()) if (member !== this.self.name) this.#sendTo(member, message);
  }

  #sendTo(node: string, message: ClusterMessage): void {
    this.#hooks.send({ from: clusterActorId, to: `${node}${separator}${clusterActorId}`, msg: message });
  }

  #persist(): void {
    if (this.#dataDir === null) return;
    saveRecord(this.#dataDir, { version: 1, self: this.self.name, members: [...this.#members.values()], namespaces: this.namespaces });
  }
}

function countOf(nodes: readonly string[], node: string): number {
  let count = 0;
  for (const each of nodes) if (each === node) count += 1;
  return count;
}
