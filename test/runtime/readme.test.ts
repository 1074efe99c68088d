/**
 * The README's embedding example is run as written (only `'haret'` is pointed at the sources),
 * in a child process that must print the documented output and exit by itself.
 */

import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runChild } from './helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('README', function () {
  this.timeout(90_000);

  it('the embedding example runs as written and the process exits by itself', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Embedding haret'));
    const match = /```js\n([\s\S]*?)```/.exec(section);
    expect(match, 'README has a js example under "Embedding haret"').to.not.equal(null);
    const source = (match?.[1] ?? '').replace("from 'haret'", `from '${pathToFileURL(join(root, 'src/index.ts')).href}'`);
    const dir = mkdtempSync(join(tmpdir(), 'haret-readme-'));
    try {
      const file = join(dir, 'example.mjs');
      writeFileSync(file, source);
      const result = await runChild(['--import', 'tsx', file], 60_000);
      expect(result.stderr).to.equal('');
      expect(result.stdout).to.equal('cas_failed true\non 1 6\n');
      expect(result.code).to.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
