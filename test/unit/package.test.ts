/**
 * The package as users see it: the manifest points at files that exist, the `haret` command
 * answers, and the public entry exposes the core.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as haret from '../../src/index.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  exports: Record<string, unknown>;
  engines: { node: string };
  scripts: Record<string, string>;
};

describe('package', () => {
  it('declares the haret command, an exports map with types first, Node >= 20.19, and the scripts CI and users run', () => {
    expect(pkg.bin).to.have.property('haret');
    expect(existsSync(`${root}/${pkg.bin['haret']}`)).to.equal(true);
    expect(Object.keys(pkg.exports['.'] as object)[0]).to.equal('types');
    expect(pkg.engines.node).to.equal('>=20.19');
    expect(pkg.scripts).to.include.keys('build', 'typecheck', 'test', 'bench', 'vopr', 'start');
    // The entry points at built files (dist/), which are not committed: every way of installing builds them.
    expect(pkg.scripts['prepare']).to.equal('npm run build');
  });

  it('haret --version prints the package version; an unknown command exits 2', () => {
    const version = execFileSync(process.execPath, [`${root}/bin/haret.js`, '--version'], { encoding: 'utf8' });
    expect(version.trim()).to.equal(pkg.version);
    const unknown = spawnSync(process.execPath, [`${root}/bin/haret.js`, 'frobnicate'], { encoding: 'utf8' });
    expect(unknown.status).to.equal(2);
    expect(unknown.stderr).to.match(/unknown or not yet available command: frobnicate/);
  });

  it('the public entry exposes the tree, the replica core and the client sessions', () => {
    expect(haret.tree.applyOp).to.be.a('function');
    expect(haret.tree.validateOp).to.be.a('function');
    expect(haret.vr.step).to.be.a('function');
    expect(haret.client.clientStep).to.be.a('function');
  });

  it('the public entry exposes the embedding API', () => {
    expect(haret.startNode).to.be.a('function');
    expect(new haret.HaretError('timeout', 'x', 'maybe')).to.be.instanceOf(Error);
  });
});
