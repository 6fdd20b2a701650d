/**
 * The two error helpers of backend start-up: a one-line reason for any thrown value, and the
 * error for an explicit request (a forced backend, a thread count, a BLAS path) that cannot be
 * met, which fails `initBackend` instead of trying the next backend.
 */

/** A request that was explicit and cannot be met: fails initBackend instead of trying the next backend. */
export class UnmetRequestError extends Error {}

/** The first non-empty line of an error's message, at most 300 characters. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e);
  const line = msg.split("\n").map((s) => s.trim()).find((s) => s !== "") ?? "unknown error";
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
