/** A step into a nested value: an object key or an array index. */
export type PathSegment = string | number;

export interface MapStringsOptions {
  /**
   * Also map object keys. Templates leave keys literal (a header name is never rendered); the
   * masker maps them, because a secret echoed back as a key must not reach a log either.
   * @defaultValue false
   */
  readonly keys?: boolean;
  /**
   * Copy `Error` instances (same prototype, own properties such as `message`, `stack`, `code` and
   * `cause` mapped) instead of returning them untouched.
   * @defaultValue false
   */
  readonly errors?: boolean;
}

/**
 * A copy of `value` with every string `fn` returns in place of the original. Arrays and plain objects
 * (prototype `Object.prototype` or `null`) are walked; other objects (Date, Map, Buffer, class
 * instances) are returned as they are. Shared and cyclic references keep their shape in the copy.
 *
 * `path` is a live stack owned by the walker: read it inside `fn`, never keep it.
 */
export function mapStrings<T>(
  value: T,
  fn: (text: string, path: readonly PathSegment[]) => string,
  options: MapStringsOptions = {},
): T {
  const copies = new Map<object, unknown>();
  const path: PathSegment[] = [];

  const walk = (node: unknown): unknown => {
    if (typeof node === 'string') return fn(node, path);
    if (typeof node !== 'object' || node === null) return node;
    const seen = copies.get(node);
    if (seen !== undefined) return seen;

    if (Array.isArray(node)) {
      const out: unknown[] = new Array<unknown>(node.length);
      copies.set(node, out);
      for (let i = 0; i < node.length; i++) {
        path.push(i);
        out[i] = walk(node[i]);
        path.pop();
      }
      return out;
    }

    const proto: unknown = Object.getPrototypeOf(node);
    if (proto === Object.prototype || proto === null) {
      const out = Object.create(proto as object | null) as Record<string, unknown>;
      copies.set(node, out);
      for (const [key, child] of Object.entries(node)) {
        path.push(key);
        const mappedKey = options.keys ? fn(key, path) : key;
        // defineProperty, not assignment: a JSON key "__proto__" must stay data, not become a prototype.
        Object.defineProperty(out, mappedKey, {
          value: walk(child),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        path.pop();
      }
      return out;
    }

    if (options.errors && node instanceof Error) {
      const out = Object.create(proto as object) as Error;
      copies.set(node, out);
      for (const key of Reflect.ownKeys(node)) {
        const descriptor = Object.getOwnPropertyDescriptor(node, key);
        if (descriptor === undefined) continue;
        // Some engines install `stack` as an own accessor; read it so the copy holds masked text.
        let field: unknown = descriptor.value;
        if (!('value' in descriptor)) {
          try {
            field = Reflect.get(node, key);
          } catch {
            continue;
          }
        }
        path.push(String(key));
        Object.defineProperty(out, key, {
          value: walk(field),
          enumerable: descriptor.enumerable ?? false,
          writable: true,
          configurable: true,
        });
        path.pop();
      }
      return out;
    }

    return node;
  };

  return walk(value) as T;
}

/** `headers.Authorization`, `steps[2].url`; the empty path (the value itself) is `(root)`. */
export function formatPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}
