import assert from "node:assert/strict";
import type { KvCache } from "../../kv/cache.ts";
import { bufferName, counter, named, type NamedKey } from "../../kv/names.ts";
import type { SumBuffer } from "../../kv/sum_buffer.ts";

Deno.test("names: named and counter build the same names as before", () => {
  const key = ["usage", "t_1", 2026, true];
  assert.deepEqual(named(key), { key, name: '["usage","t_1",2026,true]' });
  assert.deepEqual(counter("sum", key), { key, name: 'sum:["usage","t_1",2026,true]' });
  assert.deepEqual(counter("max", key), { key, name: 'max:["usage","t_1",2026,true]' });
  assert.equal(bufferName("sum", key), counter("sum", key).name);
});

Deno.test("names: a name of another kind fails type checking", () => {
  // Never called: the checks are deno check's, which fails on an unused @ts-expect-error.
  const _checks = (cache: KvCache, buffer: SumBuffer, key: Deno.KvKey) => {
    const read = named(key);
    const sum = counter("sum", key);
    const max = counter("max", key);
    cache.getSync(key, read.name);
    buffer.add(key, 1, false, sum.name);
    buffer.max(key, 1, false, max.name);
    // @ts-expect-error a read-cache name where a sum's is expected (it would count 0)
    buffer.pending(key, read.name);
    // @ts-expect-error the same, adding
    buffer.add(key, 1, false, read.name);
    // @ts-expect-error a sum's name where a max's is expected
    buffer.max(key, 1, false, sum.name);
    // @ts-expect-error a buffer name where a read-cache name is expected
    cache.getSync(key, sum.name);
    // @ts-expect-error the kind is in NamedKey's type too
    const _sum: NamedKey<"sum"> = named(key);
  };
});
