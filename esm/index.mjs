// ESM entry: the CommonJS build's exports, by name.
export * from '../dist/index.js';
import cjs from '../dist/index.js';
export default cjs;
