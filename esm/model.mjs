// ESM entry: the CommonJS build's exports, by name.
export * from '../dist/api/model_config.js';
import cjs from '../dist/api/model_config.js';
export default cjs;
