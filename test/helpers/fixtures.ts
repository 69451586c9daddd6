import path from 'node:path';
import { projectRoot } from '../../src/paths.js';

/** The fixture model repository: small JS models (sum, slow) and a corrupt ONNX file. */
export const fixtureModels = path.join(projectRoot, 'test', 'fixtures', 'models');

/** Waits until `check` is true, polling; rejects after `ms` so a broken test fails instead of hanging. */
export async function waitFor(check: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
