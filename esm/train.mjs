// ESM entry: the CommonJS build's exports, by name.
export * from '../dist/api/train.js';
import cjs from '../dist/api/train.js';
export default cjs;
