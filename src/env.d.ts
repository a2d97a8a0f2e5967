declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
/** Randomised property-test cases and seed (tests only; BN_PROPERTY_CASES, BN_PROPERTY_SEED). */
declare const __PROPERTY_CASES__: number;
declare const __PROPERTY_SEED__: number;
