/**
 * `npm start` (src/cli/start.ts) with stdin piped: commands run line by line, results print
 * with versions, view and op, and end of input stops the node and the process exits by itself.
 */

import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { runChild } from './helpers.ts';

const start = fileURLToPath(new URL('../../src/cli/start.ts', import.meta.url));

describe('npm start', function () {
  this.timeout(90_000);

  it('serves the prompt line by line and exits cleanly at end of input', async () => {
    const input = ['mkdir /a', 'create blob /a/b', 'put /a/b hello', 'get /a/b', 'status', 'get /missing', 'frobnicate', ''].join('\n');
    const result = await runChild(['--import', 'tsx', start], 60_000, input);
    expect(result.code, result.stderr).to.equal(0);
    const out = result.stdout;
    expect(out).to.contain('hello · version 1');
    expect(out).to.match(/view \d+ · op \d+/);
    expect(out).to.match(/default\/r\d\s+running\s+primary\s+normal view \d+/);
    expect(out).to.contain('(does_not_exist)');
    expect(out).to.match(/error: .*frobnicate/);
    expect(result.stderr).to.match(/namespace default on 3 replicas, client API on 127.0.0.1:\d+, ready/);
    expect(result.stderr).to.contain('In memory only: what you write is gone when this process stops.');
  });
});
