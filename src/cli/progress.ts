/** A one-line progress display for the terminal (rate, ETA, loss), redrawn in place on a TTY. */
import type { CliIO } from "./io";

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

export function progressBar(fraction: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return "[" + "#".repeat(filled) + "-".repeat(width - filled) + "]";
}

export class ProgressLine {
  private lastDraw = 0;
  constructor(
    private readonly io: CliIO,
    private readonly tty: boolean,
  ) {}

  /** Redraws at most every 200 ms on a TTY; elsewhere (logs, CI) prints a line at most every 10 s, and always when forced. */
  update(text: string, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < (this.tty ? 200 : 10_000)) return;
    this.lastDraw = now;
    if (this.tty) process.stderr.write(`\r${text}\x1b[K`);
    else this.io.err(text);
  }

  done(): void {
    if (this.tty) process.stderr.write("\n");
  }
}
