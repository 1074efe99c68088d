/**
 * haret's public API. Today: the versioned tree, the pure VR replica core and client-session
 * logic. The embedding API (`startNode`) and the network client (`connect`) arrive with the
 * runtime and network issues.
 */
export * as tree from './tree/index.ts';
export * as vr from './vr/index.ts';
export * as client from './client/index.ts';
