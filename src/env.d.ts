declare module '*.wgsl?kernel' {
  /** A kernel compiled at build time by scripts/wgsl.ts: prelude joined, reflected, comments stripped. */
  const compiled: import('./gpu/kernel.js').CompiledWgsl;
  export default compiled;
}
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
/** Randomised property-test cases and seed (tests only; BN_PROPERTY_CASES, BN_PROPERTY_SEED). */
declare const __PROPERTY_CASES__: number;
declare const __PROPERTY_SEED__: number;
declare const __PROPERTY_PATH__: string;
