// The paging of the List streams: every item in exactly one page, in order; no empty page; no message
// for an empty list.
import { describe, expect, it } from 'vitest';
import { pages, pagesOf } from '../../src/server/handlers/pages';

const collect = async <T>(it: AsyncIterable<T[]>) => {
  const out: T[][] = [];
  for await (const page of it) out.push(page);
  return out;
};

describe('list pages', () => {
  it('splits items into pages of at most the size, each item once and in order', async () => {
    expect(await collect(pagesOf([1, 2, 3, 4, 5], 2))).toEqual([[1, 2], [3, 4], [5]]);
    expect(await collect(pagesOf([1, 2, 3, 4], 2))).toEqual([[1, 2], [3, 4]]);
    expect(await collect(pagesOf([], 2))).toEqual([]);
  });

  it('builds the items of a page only when the page is read', async () => {
    const built: number[] = [];
    const it = pages(5, async (i) => (built.push(i), i * 10), 2)[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual([0, 10]);
    expect(built).toEqual([0, 1]);
    expect((await it.next()).value).toEqual([20, 30]);
    expect(built).toEqual([0, 1, 2, 3]);
  });
});
