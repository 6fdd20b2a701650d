/**
 * Float32 tensors written in place: the way real-size weights reach the backend without a second
 * whole copy on the JS side. On the wasm backend the tensor is allocated on the WASM heap first
 * and `fill` writes through a view of that memory; elsewhere `fill` writes a fresh Float32Array
 * that becomes the tensor's data (the cpu backend keeps it as is, tfjs-node copies it once).
 */
import * as tf from "@tensorflow/tfjs";

/** What the wasm backend offers for this (tfjs-backend-wasm's BackendWasm). */
interface HeapBackend {
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

function heapBackend(): HeapBackend | undefined {
  if (tf.getBackend() !== "wasm") return undefined;
  const b = tf.backend() as unknown as Partial<HeapBackend>;
  return typeof b.makeOutput === "function" && typeof b.typedArrayFromHeap === "function" ? (b as HeapBackend) : undefined;
}

/**
 * A float32 tensor of `shape` whose every value `fill(dst)` writes (dst starts as garbage on
 * wasm, zeros elsewhere). `fill` must not run tfjs ops: a WASM heap allocation may grow the heap
 * and detach the view, which is detected and reported. If `fill` throws, the tensor is freed.
 */
export function filledTensor(shape: number[], fill: (dst: Float32Array) => void): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const heap = size > 0 ? heapBackend() : undefined;
  if (!heap) {
    const values = new Float32Array(size);
    fill(values);
    return tf.tensor(values, shape, "float32");
  }
  const info = heap.makeOutput(shape.slice(), "float32");
  const tensor = tf.engine().makeTensorFromTensorInfo(info, tf.backend());
  try {
    const dst = heap.typedArrayFromHeap(info);
    fill(dst);
    if (dst.length !== size) {
      throw new Error(`filledTensor: the WASM heap grew while filling a [${shape}] tensor (the fill ran a tfjs op), so its values were lost`);
    }
  } catch (err) {
    tensor.dispose();
    throw err;
  }
  return tensor;
}
