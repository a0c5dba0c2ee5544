// Shape-checked op wrappers over the native kernels, one module per op family.
export * from './creation';
export * from './elementwise';
export * from './reduce';
export * from './matmul';
export * from './routing';
export * from './norm';
export * from './grouped_gemm';
export * from './loss';
export * from './optim';
export * from './attention';
export * from './moe';
