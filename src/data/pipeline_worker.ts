/**
 * A worker thread of the preprocessing pipeline (pipeline.ts): receives images, answers with
 * their `[S, S, 3]` uint8 pixels (transferred, not copied). Started by `PreparePool` with
 * `workerData = { spec, inflight, sharpThreads }`; runs at most `inflight` images at once, so
 * sharp's decode of one (on libuv's threads) overlaps the JavaScript resize of another while
 * decoded full-size images never pile up.
 *
 * Messages in:  { id, key, image: ImageRef, seed? }
 * Messages out: { id, pixels } | { id, bad: detail } (an image that cannot be decoded) |
 *               { id, fatal: message } (anything else)
 */
import { parentPort, workerData } from "node:worker_threads";
import sharp from "sharp";
import { DataError, type ImageRef } from "./dataset";
import { preparePixels, type PrepareSpec } from "./prepare";

interface Task {
  id: number;
  key: string;
  image: ImageRef;
  seed?: number;
}

const data = workerData as { spec: PrepareSpec; inflight: number; sharpThreads: number | null };
if (data.sharpThreads !== null) sharp.concurrency(data.sharpThreads);
const port = parentPort!;
const queue: Task[] = [];
let running = 0;

function pump(): void {
  while (running < data.inflight && queue.length > 0) {
    const task = queue.shift()!;
    running++;
    preparePixels(task.image, task.key, data.spec, task.seed).then(
      (pixels) => {
        // Transfer a buffer holding exactly the pixels (a view into something larger is copied).
        const own = pixels.byteOffset === 0 && pixels.byteLength === pixels.buffer.byteLength ? pixels : pixels.slice();
        port.postMessage({ id: task.id, pixels: own }, [own.buffer as ArrayBuffer]);
      },
      (err: unknown) => {
        if (err instanceof DataError) port.postMessage({ id: task.id, bad: err.message.slice(err.where.length + 2) });
        else port.postMessage({ id: task.id, fatal: err instanceof Error ? err.message : String(err) });
      },
    ).finally(() => {
      running--;
      pump();
    });
  }
}

port.on("message", (task: Task) => {
  queue.push(task);
  pump();
});
