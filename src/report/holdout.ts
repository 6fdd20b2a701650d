/**
 * A seeded two-way split of one dataset by item, stratified by class, for the report's prompt
 * study when there is no separate training split (a checkpoint reported on one image folder or
 * CSV): the prompt study chooses templates, weights and k-shot samples on the "selection" part and
 * scores them on the "test" part, so nothing it picks has seen the images it is scored on. Within
 * each class the items (by source index, from a label pass) are shuffled with the seed and
 * round(testShare * n) go to the test part; both parts read the source in order, with their own
 * limits. Items not in the label pass belong to neither.
 */
import type { DataItem, Dataset, ReadOptions } from "../data/dataset";
import { Random } from "../util/random";

function view(ds: Dataset, members: Set<number>, part: string): Dataset {
  const keep = (i: number) => members.has(i);
  return {
    spec: `${ds.spec} (${part})`,
    name: `${ds.name} (${part})`,
    classNames: ds.classNames,
    templates: ds.templates,
    groupKeys: ds.groupKeys,
    hasCaptions: ds.hasCaptions,
    hasLabels: ds.hasLabels,
    captioner: ds.captioner,
    size: members.size,
    items(opts: ReadOptions = {}): AsyncIterable<DataItem> {
      if (opts.shard) throw new RangeError(`${ds.spec} (${part}): a held-out split cannot be sharded`);
      const limit = opts.limit ?? Infinity;
      return (async function* () {
        let n = 0;
        if (n >= limit) return;
        let left = members.size;
        for await (const item of ds.items({ skipBadImages: opts.skipBadImages, onSkip: opts.onSkip })) {
          if (!keep(item.index)) continue;
          yield item;
          if (++n >= limit || --left === 0) return;
        }
      })();
    },
  };
}

/** The selection and test parts of `ds`, from its items' labels (`indices[j]` has label `labels[j]`). */
export function holdoutSplit(ds: Dataset, pass: { indices: ArrayLike<number>; labels: ArrayLike<number> }, seed = 0, testShare = 0.5): { selection: Dataset; test: Dataset } {
  if (!(testShare > 0 && testShare < 1)) throw new RangeError(`holdoutSplit: testShare must be in (0, 1), got ${testShare}`);
  if (pass.indices.length !== pass.labels.length) throw new Error(`holdoutSplit: ${pass.indices.length} indices but ${pass.labels.length} labels`);
  const byClass = new Map<number, number[]>();
  for (let j = 0; j < pass.indices.length; j++) {
    const l = byClass.get(pass.labels[j]);
    if (l) l.push(pass.indices[j]);
    else byClass.set(pass.labels[j], [pass.indices[j]]);
  }
  const rng = new Random(seed);
  const test = new Set<number>();
  const selection = new Set<number>();
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = rng.shuffle(byClass.get(c)!.slice()) as number[];
    const t = Math.round(testShare * members.length);
    members.forEach((i, k) => (k < t ? test : selection).add(i));
  }
  return { selection: view(ds, selection, "selection half"), test: view(ds, test, "test half") };
}
