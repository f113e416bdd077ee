// The paged streaming forms of the List calls (StreamPodSandboxes, StreamContainers, StreamImages and the
// stats streams; the kubelet's CRIListStreaming): the same items as the List call, built and sent a page
// at a time, so that no message comes near the gRPC size limit however many pods a node has, and what is
// built at once stays bounded. Every item is in exactly one page, a page is never empty, and an empty
// list is a stream with no message.

/** Items per message: with the largest items (a container's stats, about 1 KiB) well under a MiB. */
export const PAGE_ITEMS = 256;

/** The items 0..count-1, built by item(i), in pages of at most `size`. */
export async function* pages<T>(count: number, item: (i: number) => T | Promise<T>, size = PAGE_ITEMS): AsyncIterable<T[]> {
  for (let start = 0; start < count; start += size) {
    const page: T[] = [];
    for (let i = start; i < Math.min(count, start + size); i++) page.push(await item(i));
    yield page;
  }
}

/** pages() of a list already built. */
export function pagesOf<T>(items: readonly T[], size = PAGE_ITEMS): AsyncIterable<T[]> {
  return pages(items.length, (i) => items[i], size);
}
