/** Public surface of the VR replica core. */
export * from './config.ts';
export type * from './messages.ts';
export type * from './io.ts';
export { initialReplicaState, type ReplicaState, type ReplicaStatus } from './state.ts';
export { step, stepAll } from './step.ts';
export { isPrimary, isNormalPrimary } from './context.ts';
export { entryAt, lastOp, type Log } from './log.ts';
export { encodeCheckpoint, decodeCheckpoint } from './checkpoint.ts';
export type { Machine } from './state_machine.ts';
export type { ClientRecord, ClientTable } from './client_table.ts';
