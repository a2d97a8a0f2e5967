declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
/** Absolute path of ../shared, injected by vite.config.ts (tests only). */
declare const __SHARED_DIR__: string;
