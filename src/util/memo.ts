// Building a response once per change. Records are immutable (a change saves a new object), so a list whose
// items are the very same objects as last time has the very same content: its response (and, through
// encoded-responses.ts, its encoding) can be handed out again. The kubelet's relist asks every second
// for lists that rarely change.

const sameItems = <T>(a: readonly T[], b: readonly T[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** `build`, called again only when the items differ (by identity) from the previous call's. */
export function whileSame<T, R>(build: (items: readonly T[]) => R): (items: readonly T[]) => R {
  let last: { items: readonly T[]; result: R } | undefined;
  return (items) => {
    if (!last || !sameItems(last.items, items)) last = { items, result: build(items) };
    return last.result;
  };
}
