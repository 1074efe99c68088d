/** haret on the network: the TCP client API server and the client library. */
export { connect, RemoteConnection, type ConnectOptions } from './connect.ts';
export { ClientApiServer, type ClientApiOptions } from './server.ts';
