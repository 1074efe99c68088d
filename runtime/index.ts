/** The generic actor runtime: knows nothing of VR (DESIGN.md "Folder layout"). */
export type { Actor, ActorContext, ActorFactory, ActorSpec, ActorStatus } from './actor.ts';
export type { ActorId, Envelope } from './envelope.ts';
export type { CodecName } from './codec.ts';
export type { LogLevel, Logger } from './logger.ts';
export type { InjectedFault, WorkerStatus } from './protocol.ts';
export { ControlError } from './control.ts';
export { defaultSupervisorOptions, type SupervisorOptions } from './supervisor.ts';
export type { LinkSink, PeerLink, Transport, TransportKind, TransportStats } from './transport.ts';
export { transportKind, type TransportName } from './mesh.ts';
export { makeRingTransportKind, ringTransport, type RingTransportConfig, type RingTransportStats } from './ring_transport.ts';
export { ActorSystem, hostThread, type SystemEvent, type SystemOptions, type WorkerReport, type WorkerSpec, type WorkerState, type HostActorSpec, type HostActorReport } from './system.ts';
export { every, type Interval } from './clock.ts';
