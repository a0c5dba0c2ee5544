// ESM entry: the CommonJS build's exports, by name.
export * from '../dist/api/data.js';
import cjs from '../dist/api/data.js';
export default cjs;
