/** Public surface of the pure client-session logic. */
export * from './config.ts';
export type * from './io.ts';
export { initialClientState, clientStep, isIdle, type ClientState, type ClientStepResult } from './session.ts';
