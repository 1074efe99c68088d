/**
 * Helpers of the HTTP listener's tests (issue 17): one request over node:http or node:https
 * (with the test CA and a Bearer token), bounded in time, and a reader of the Prometheus text
 * exposition good enough to check figures by name and labels.
 */

import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export type HttpAnswer = { readonly status: number; readonly headers: IncomingHttpHeaders; readonly body: string };

export type HttpGetOptions = {
  readonly method?: string;
  /** The CA of an HTTPS server; absent: plain HTTP. */
  readonly ca?: string;
  readonly token?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly timeoutMs?: number;
};

/** One request to `address` (host:port) for `path`; rejects on a socket error or after the timeout. */
export function httpGet(address: string, path: string, options: HttpGetOptions = {}): Promise<HttpAnswer> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const headers: Record<string, string> = { ...options.headers, ...(options.token === undefined ? {} : { Authorization: `Bearer ${options.token}` }) };
  const settings = { host, port, path, method: options.method ?? 'GET', headers, agent: false as const, timeout: options.timeoutMs ?? 10_000 };
  return new Promise((resolve, reject) => {
    const request = options.ca === undefined ? httpRequest(settings) : httpsRequest({ ...settings, ca: options.ca });
    request.on('timeout', () => request.destroy(new Error(`no answer to ${path} within ${settings.timeout} ms`)));
    request.on('error', reject);
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.end(options.body);
  });
}

export type Sample = { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly value: number };

/** The samples of a Prometheus text exposition (comments and blank lines skipped). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, '$1');
    const raw = match[3] as string;
    samples.push({ name: match[1] as string, labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) });
  }
  return samples;
}

/** The samples named `name` whose labels include `labels`. */
export function samplesOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): Sample[] {
  return samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
}

/** The one sample named `name` with exactly these labels, or undefined. */
export function valueOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const wanted = Object.keys(labels).length;
  return samplesOf(samples, name, labels).find((sample) => Object.keys(sample.labels).length === wanted)?.value;
}

/** The sum of every sample named `name` whose labels include `labels`. */
export function sumOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number {
  return samplesOf(samples, name, labels).reduce((sum, sample) => sum + sample.value, 0);
}
