/**
 * `fashion-mnist[:DIR]`: Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, https://arxiv.org/abs/1708.07747)
 * as a dataset: 28x28 grey ("L") items decoded in memory, labelled, without captions of their own;
 * its caption generator is the one the default recipe trains with (captions.json).
 * The in-memory split stays reachable (`labelled`) for the training fast path, whose batches
 * the default recipe's results are measured with.
 */
import { CaptionSet } from "../captions";
import { captionSetCaptioner } from "../captioner";
import { readIndexed, type Captioner, type DataItem, type Dataset, type ReadOptions } from "../dataset";
import { DEFAULT_FASHION_MNIST_DIR, loadFashionMnist, type FashionMnistSplit, type LabelledImages } from "../fashion_mnist";
import type { DatasetOptions } from "../open";
import { readClassnames } from "./classnames";

export class FashionMnistDataset implements Dataset {
  readonly name: string;
  /** The names prompts use (captions.json's canonical names, e.g. "pair of trousers"), in label order. */
  readonly classNames: readonly string[];
  /** captions.json's evaluation templates, disjoint from the training captions. */
  readonly templates: readonly string[];
  readonly groupKeys: readonly string[] = [];
  readonly hasCaptions = false;
  readonly hasLabels = true;
  readonly size: number;
  readonly captioner: Captioner;

  constructor(
    readonly spec: string,
    readonly labelled: LabelledImages,
    readonly split: FashionMnistSplit,
    readonly captionSet: CaptionSet = CaptionSet.load(),
    classNames?: string[],
  ) {
    this.name = `fashion-mnist-${split}`;
    this.classNames = classNames ?? captionSet.spec.classes.map((c) => c.canonical);
    this.templates = captionSet.spec.evalTemplates;
    this.size = labelled.count;
    this.captioner = captionSetCaptioner(captionSet);
  }

  async get(index: number): Promise<DataItem> {
    return this.item(index);
  }

  /** The item at `index`, synchronously (the pixels are a view of the split, no copy). */
  item(index: number): DataItem {
    const { height: h, width: w, images, labels, count } = this.labelled;
    if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`${this.spec}: index ${index} outside [0, ${count})`);
    return {
      key: `${this.name}#${index}`,
      index,
      image: { kind: "decoded", image: { width: w, height: h, mode: "L", data: images.subarray(index * h * w, (index + 1) * h * w) } },
      label: labels[index],
      captions: [],
    };
  }

  items(opts: ReadOptions = {}): AsyncIterable<DataItem> {
    return readIndexed(this.size, async (i) => this.item(i), opts);
  }
}

export async function openFashionMnist(target: string, opts: DatasetOptions, spec: string): Promise<FashionMnistDataset> {
  const split = opts.split ?? "test";
  const labelled = loadFashionMnist(split, { dataDir: target || DEFAULT_FASHION_MNIST_DIR });
  const names = opts.classnamesFile ? readClassnames(opts.classnamesFile, labelled.classNames.length) : undefined;
  return new FashionMnistDataset(spec || "fashion-mnist", labelled, split, undefined, names);
}

/** True for the Fashion-MNIST source (whose in-memory split the training fast path uses). */
export function isFashionMnist(ds: Dataset): ds is FashionMnistDataset {
  return ds instanceof FashionMnistDataset;
}
