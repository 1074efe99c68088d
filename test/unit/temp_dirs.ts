/**
 * Temporary directories for a test file (the storage tests): a root made before its tests and
 * removed after them. `freshDir` names a new directory under it (not created: the code under
 * test creates it); `madeDir` creates one. Call at a test file's top level: it registers hooks.
 */

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function useTempDirs(prefix: string): { readonly freshDir: () => string; readonly madeDir: () => Promise<string> } {
  let root = '';
  let counter = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), `haret-${prefix}-`));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true, maxRetries: 5 });
  });
  const freshDir = (): string => join(root, `d${counter++}`);
  return {
    freshDir,
    madeDir: async () => {
      const dir = freshDir();
      await mkdir(dir, { recursive: true });
      return dir;
    },
  };
}
