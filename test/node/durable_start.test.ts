/**
 * How a durable node's own namespaces start (src/node/data_dir.ts): fresh on a new node; on a
 * restart each replica resumes from its store; and a namespace none of whose replicas ever
 * stored anything (a crash during the node's first start, or every replica directory deleted)
 * starts fresh instead of waiting forever for a recovery nobody can answer.
 */

import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeMarkerFile } from '../../src/node/data_dir.ts';
import { startNode } from '../../src/node/index.ts';

describe('node: how a durable node starts its namespaces', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'haret-durable-start-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const startedAs = async (node: Awaited<ReturnType<typeof startNode>>): Promise<string[]> =>
    (await node.status()).actors
      .filter((actor) => actor.ns === 'default')
      .map((actor) => String((actor.detail as { startedAs?: unknown } | null)?.startedAs))
      .sort();

  it('a restart resumes every replica from its store; the data is there', async () => {
    const first = await startNode({ namespaces: ['default'], dataDir: dir, logLevel: 'silent' });
    try {
      await first.client().create('/kept', 'blob');
      expect(await startedAs(first)).to.deep.equal(['fresh', 'fresh', 'fresh']);
    } finally {
      await first.stop();
    }
    const second = await startNode({ namespaces: ['default'], dataDir: dir, logLevel: 'silent' });
    try {
      expect((await second.client().stat('/kept')).nodeType).to.equal('blob');
      expect(await startedAs(second)).to.deep.equal(['restart', 'restart', 'restart']);
    } finally {
      await second.stop();
    }
  });

  it('a node whose first start crashed before any replica stored anything starts its namespace fresh, and serves', async () => {
    // What a crash right after the node marker was written leaves: the marker, nothing else.
    writeFileSync(join(dir, nodeMarkerFile), `${JSON.stringify({ format: 1, node: 'haret' })}\n`);
    const node = await startNode({ namespaces: ['default'], dataDir: dir, logLevel: 'silent' });
    try {
      await node.client().create('/after', 'blob');
      expect(await startedAs(node)).to.deep.equal(['fresh', 'fresh', 'fresh']);
    } finally {
      await node.stop();
    }
  });

  it('one replica directory deleted: that replica recovers from the two others, nothing is lost', async () => {
    const first = await startNode({ namespaces: ['default'], dataDir: dir, logLevel: 'silent' });
    try {
      await first.client().create('/kept', 'blob');
    } finally {
      await first.stop();
    }
    rmSync(join(dir, 'replicas', 'default.r1'), { recursive: true, force: true });
    const second = await startNode({ namespaces: ['default'], dataDir: dir, logLevel: 'silent' });
    try {
      expect((await second.client().stat('/kept')).nodeType).to.equal('blob');
      expect(await startedAs(second)).to.deep.equal(['recovering', 'restart', 'restart']);
    } finally {
      await second.stop();
    }
  });
});
