// Shape-checked op wrappers over the native kernels, one module per op family.
export * from './creation';
export * from './elementwise';
export * from './reduce';
export * from './matmul';
