/** CPU tests always run; CUDA tests (test/cuda) skip, visibly, where no GPU is usable. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/tsconfig.json', diagnostics: { warnOnly: false } }],
  },
  testTimeout: 120000,
  maxWorkers: 1, // serial: the event-loop-delay tests measure a quiet machine, not a busy one
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
