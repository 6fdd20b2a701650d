/**
 * `imagefolder:DIR`: torchvision's ImageFolder layout (https://pytorch.org/vision/stable/generated/torchvision.datasets.ImageFolder.html):
 * one subfolder per class, classes sorted by folder name, the images of each class found
 * recursively and sorted by path. `classnames.txt` in DIR (one readable name per line, in the
 * sorted folder order, as CLIP_benchmark ships them) overrides the folder names.
 *
 * Beyond torchvision: a folder holding images and no class subfolders is an unlabelled dataset
 * (embedding a folder of photos), and a `NAME.txt` beside `NAME.jpg` gives that image its
 * captions (one per line).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DataError, readIndexed, type DataItem, type Dataset, type ReadOptions } from "../dataset";
import { templateCaptioner } from "../captioner";
import type { DatasetOptions } from "../open";
import { readClassnames } from "./classnames";

/** Extensions read as images (case-insensitive): what sharp decodes. */
export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze([".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif"]);

export function isImageFile(name: string): boolean {
  const ext = path.extname(name).toLowerCase();
  return IMAGE_EXTENSIONS.includes(ext);
}

/** Image files under `dir`, recursively, sorted by path (code-point order, as Python sorts). */
function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    const entries = fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory() || (e.isSymbolicLink() && fs.statSync(p).isDirectory())) walk(p);
      else if (isImageFile(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Reads a file's bytes; a failure is a DataError naming the file. */
export function readImageBytes(file: string): Uint8Array {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(file, code === "ENOENT" ? "image file not found" : `cannot read the image file (${code ?? (err as Error).message})`);
  }
  if (buf.length === 0) throw new DataError(file, "image file is empty");
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function sidecarCaptions(file: string): string[] {
  const txt = file.slice(0, file.length - path.extname(file).length) + ".txt";
  if (!fs.existsSync(txt)) return [];
  return fs.readFileSync(txt, "utf8").replace(/^\uFEFF/, "").split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
}

export class ImageFolderDataset implements Dataset {
  readonly name: string;
  readonly groupKeys: readonly string[] = [];
  readonly hasLabels: boolean;
  readonly hasCaptions: boolean;
  readonly size: number;
  readonly captioner;

  constructor(
    readonly spec: string,
    readonly root: string,
    readonly files: readonly string[],
    readonly labels: Int32Array | null,
    readonly classNames: readonly string[] | undefined,
    readonly captionsOf: readonly string[][],
  ) {
    this.name = path.basename(path.resolve(root));
    this.hasLabels = labels !== null;
    this.hasCaptions = captionsOf.some((c) => c.length > 0);
    this.size = files.length;
    this.captioner = classNames ? templateCaptioner(classNames) : undefined;
  }

  async get(index: number): Promise<DataItem> {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new RangeError(`${this.spec}: index ${index} outside [0, ${this.size})`);
    const file = this.files[index];
    const item: DataItem = { key: file, index, image: { kind: "encoded", bytes: readImageBytes(file) }, captions: this.captionsOf[index] };
    if (this.labels) item.label = this.labels[index];
    return item;
  }

  items(opts: ReadOptions = {}): AsyncIterable<DataItem> {
    return readIndexed(this.size, (i) => this.get(i), opts);
  }
}

export async function openImageFolder(target: string, opts: DatasetOptions, spec: string): Promise<ImageFolderDataset> {
  const root = target;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(root);
  } catch {
    throw new DataError(root, "image folder not found");
  }
  if (!stat.isDirectory()) throw new DataError(root, "is not a folder; imagefolder:DIR needs a folder with one subfolder per class");
  const entries = fs.readdirSync(root, { withFileTypes: true });
  const classDirs = entries
    .filter((e) => e.isDirectory() || (e.isSymbolicLink() && fs.statSync(path.join(root, e.name)).isDirectory()))
    .map((e) => e.name)
    .filter((n) => !n.startsWith("."))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const files: string[] = [];
  let labels: Int32Array | null = null;
  let classNames: string[] | undefined;
  if (classDirs.length > 0) {
    const perClass: number[] = [];
    classDirs.forEach((c) => {
      const imgs = listImages(path.join(root, c));
      if (imgs.length === 0) {
        throw new DataError(path.join(root, c), `class folder has no images (looked for ${IMAGE_EXTENSIONS.join(" ")})`);
      }
      files.push(...imgs);
      perClass.push(imgs.length);
    });
    labels = new Int32Array(files.length);
    let at = 0;
    perClass.forEach((n, c) => labels!.fill(c, at, (at += n)));
    const classnames = opts.classnamesFile ?? (fs.existsSync(path.join(root, "classnames.txt")) ? path.join(root, "classnames.txt") : undefined);
    classNames = classnames ? readClassnames(classnames, classDirs.length, `class folders (${classDirs.join(", ")})`) : classDirs;
  } else {
    files.push(...listImages(root));
    if (files.length === 0) throw new DataError(root, `image folder is empty: no class subfolders and no images (looked for ${IMAGE_EXTENSIONS.join(" ")})`);
    if (opts.classnamesFile) throw new DataError(root, "has no class subfolders, so a classnames file cannot apply");
  }
  return new ImageFolderDataset(spec, root, files, labels, classNames, files.map(sidecarCaptions));
}
