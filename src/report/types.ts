/**
 * The document model of an HTML report: sections of blocks (prose, figures, tables). Library code
 * (evaluations, audits) returns `ReportSection`s; `renderReport` turns them into one self-contained
 * HTML file. Every string in a block is plain text and is escaped when rendered.
 */
import type { Figure } from "../viz/figure";

export interface TextBlock {
  kind: "text";
  /** Plain text; blank lines separate paragraphs. Never HTML. */
  text: string;
}

export interface FigureBlock {
  kind: "figure";
  figure: Figure;
  caption?: string;
}

export type TableCell = string | number | null;

export interface TableBlock {
  kind: "table";
  columns: string[];
  rows: TableCell[][];
  caption?: string;
  /** Digits after the decimal point for numbers (default 4). */
  digits?: number;
}

/** A picture given as pixels (e.g. an image next to its adversarial version), embedded as a PNG data URL. */
export interface ImageBlock {
  kind: "image";
  /** Grey or RGB pixels in [0, 1], row-major HWC. */
  pixels: Float32Array | Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3;
  caption?: string;
  /** Displayed size in CSS pixels (default: 4x the image, nearest-neighbour). */
  scale?: number;
}

export type ReportBlock = TextBlock | FigureBlock | TableBlock | ImageBlock;

export interface ReportSection {
  title: string;
  blocks: ReportBlock[];
}

export interface Report {
  title: string;
  /** Shown under the title: what was run, when, on what. */
  subtitle?: string;
  sections: ReportSection[];
}
