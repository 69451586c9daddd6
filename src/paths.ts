import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root. Every compiled module lives under `dist/<dir>/`, so the root is two levels up from
 * `dist/src/paths.js`; resolving from the module's own URL keeps tests, benchmarks and `npm start` agreeing
 * whatever the working directory is.
 */
export const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The model repository: `models/<name>/<version>/model.onnx` with a `config.json` beside it. */
export const modelsDir = path.join(projectRoot, 'models');
