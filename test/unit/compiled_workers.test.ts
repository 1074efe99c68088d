/**
 * A development checkout asked to (HARET_COMPILED=1, as the suite does) runs its worker threads
 * (runtime/bootstrap.ts) and its CLI (bin/haret.js) from dist/ when dist/ is a build of these
 * very sources (bin/compiled_fresh.cjs), and from the sources otherwise: never a stale build,
 * never a test's own actor compiled away.
 */

import { expect } from 'chai';
import { mkdir, utimes, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { compiledFresh, workerModules } from '../../runtime/bootstrap.ts';
import { actorModule } from '../../src/node/layout.ts';
import { useTempDirs } from './temp_dirs.ts';

const { useCompiled, isBuildOf } = compiledFresh();

const dirs = useTempDirs('compiled');

async function file(path: string, mtimeS: number): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, '// x\n');
  await utimes(path, mtimeS, mtimeS);
}

describe('compiled twins for a development checkout', () => {
  it('dist/ is a build of the sources only when every source has a twin at least as new', async () => {
    const root = await dirs.madeDir();
    for (const dir of ['src/a', 'actors', 'runtime']) await file(join(root, dir, 'm.ts'), 1000);
    await file(join(root, 'src/a/types.d.ts'), 5000);
    expect(isBuildOf(root), 'no dist').to.equal(false);
    for (const dir of ['src/a', 'actors', 'runtime']) await file(join(root, 'dist', dir, 'm.js'), 2000);
    expect(isBuildOf(root), 'every twin newer; declaration files need none').to.equal(true);
    await file(join(root, 'actors/m.ts'), 3000);
    expect(isBuildOf(root), 'a source edited after the build').to.equal(false);
    await file(join(root, 'dist/actors/m.js'), 3000);
    expect(isBuildOf(root)).to.equal(true);
    await file(join(root, 'runtime/new.ts'), 1000);
    expect(isBuildOf(root), 'a source the build never saw').to.equal(false);
    await rm(join(root, 'runtime/new.ts'));
    await rm(join(root, 'runtime'), { recursive: true });
    expect(isBuildOf(root), 'a compiled directory missing').to.equal(false);
  });

  it('a worker of package actors runs the compiled twins exactly when the build is fresh; one with a test actor runs the sources', () => {
    const fresh = useCompiled();
    // `npm test` builds before it runs mocha, whose config asks for the twins: there they must be used.
    if (process.env['npm_lifecycle_event'] === 'test') expect(fresh, 'npm test runs `npm run build` first, and .mocharc.cjs sets HARET_COMPILED=1').to.equal(true);
    const replica = { id: 'ns/r0', module: actorModule('replica'), init: null };
    const compiled = workerModules([replica]);
    if (fresh) {
      expect(compiled.entry).to.match(/\/dist\/runtime\/worker_entry\.js$/);
      expect(compiled.tsx).to.equal(null);
      expect(compiled.actors[0]?.module).to.match(/\/dist\/actors\/replica\.js$/);
    } else {
      expect(compiled.entry).to.match(/\/runtime\/worker_entry\.ts$/);
      expect(compiled.tsx).to.not.equal(null);
      expect(compiled.actors[0]?.module).to.equal(replica.module);
    }
    // Not asked for (benchmarks, npm start, a checkout's `haret`): the sources, fresh build or not.
    const asked = process.env['HARET_COMPILED'];
    process.env['HARET_COMPILED'] = '0';
    try {
      expect(useCompiled()).to.equal(false);
      expect(workerModules([replica]).entry).to.match(/\/runtime\/worker_entry\.ts$/);
    } finally {
      if (asked === undefined) delete process.env['HARET_COMPILED'];
      else process.env['HARET_COMPILED'] = asked;
    }
    const testActor = { id: 'echo', module: new URL('../runtime/fixtures/echo_actor.ts', import.meta.url).href, init: null };
    const mixed = workerModules([replica, testActor]);
    expect(mixed.entry).to.match(/\/runtime\/worker_entry\.ts$/);
    expect(mixed.tsx).to.not.equal(null);
    expect(mixed.actors.map((spec) => spec.module)).to.deep.equal([replica.module, testActor.module]);
  });
});
