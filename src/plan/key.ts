/** Keys of argument sets, for the caches of plans: equal for equal arguments, whatever they hold. */
const ids = new WeakMap<object, number>();
let nextId = 1;

/**
 * A string equal for equal argument sets: plain objects and arrays by value (8 levels deep), other
 * objects (buffers, devices) by identity, anything else by type and value. It throws nothing of its
 * own on any input (Symbols, cycles); only a caller's throwing getter passes through.
 */
export function argumentKey(v: unknown, depth = 0): string {
  if (typeof v === 'object' && v !== null) {
    if (depth < 8 && Array.isArray(v)) return `[${v.map((e) => argumentKey(e, depth + 1)).join(',')}]`;
    if (depth < 8 && Object.getPrototypeOf(v) === Object.prototype) {
      return `{${Object.keys(v)
        .sort()
        .map((k) => `${k}:${argumentKey((v as Record<string, unknown>)[k], depth + 1)}`)
        .join(',')}}`;
    }
    let id = ids.get(v);
    if (id === undefined) ids.set(v, (id = nextId++));
    return `#${id}`;
  }
  if (typeof v === 'function') return 'fn';
  return typeof v === 'string' ? JSON.stringify(v) : `${typeof v}:${String(v)}`;
}
