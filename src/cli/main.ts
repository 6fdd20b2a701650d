/**
 * The `cliplab` command line. `main(argv, io)` returns the exit code so tests run it in-process;
 * bin/cliplab.js turns it into the process's exit status.
 */
import { CliIO, UsageError, processIO } from "./io";
import { EMBED_USAGE, embedCommand } from "./embed";
import { TRAIN_USAGE, trainCommand } from "./train";
import { EVAL_USAGE, evalCommand } from "./eval";
import { REPORT_USAGE, reportCommand } from "./report";
import { AUDIT_USAGE, auditCommand } from "./audit";
import { ZEROSHOT_USAGE, zeroshotCommand } from "./zeroshot";
import { EXPORT_USAGE, exportCommand } from "./export";

type Command = (argv: string[], io: CliIO) => Promise<number>;

const COMMANDS: Record<string, { run: Command; usage: string; summary: string }> = {
  train: { run: trainCommand, usage: TRAIN_USAGE, summary: "train a CLIP on Fashion-MNIST (checkpoints, metrics, resume)" },
  eval: { run: evalCommand, usage: EVAL_USAGE, summary: "zero-shot classification or retrieval of a checkpoint on any dataset (CLIP_benchmark's result JSON)" },
  embed: { run: embedCommand, usage: EMBED_USAGE, summary: "image and text embeddings to an Arrow file, with their cosine matrix" },
  report: { run: reportCommand, usage: REPORT_USAGE, summary: "the whole pipeline (train or load, evaluate, embed, UMAP) as one self-contained HTML report" },
  audit: { run: auditCommand, usage: AUDIT_USAGE, summary: "audits of a checkpoint: robustness (corruptions, adversarial attacks)" },
  zeroshot: { run: zeroshotCommand, usage: ZEROSHOT_USAGE, summary: "zero-shot accuracy of every template of a set and of their ensemble" },
  export: { run: exportCommand, usage: EXPORT_USAGE, summary: "export a checkpoint as ONNX (vision_model.onnx, text_model.onnx, config.json) for onnxruntime and transformers.js" },
};

function help(): string {
  const lines = ["usage: cliplab <command> [options]", "", "commands:"];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push("", "Run `cliplab <command> --help` for a command's options.");
  return lines.join("\n");
}

/** One line per error: the first line of the message, prefixed with the command. */
function oneLine(message: string): string {
  return message.split("\n")[0];
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    io.out(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`cliplab: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(", ")})`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.out(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    const e = err as Error & { code?: string };
    // parseArgs reports unknown or malformed options with ERR_PARSE_ARGS_* codes.
    if (err instanceof UsageError || e.code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`cliplab ${name}: ${oneLine(e.message)}`);
      io.err(command.usage);
      return 2;
    }
    io.err(`cliplab ${name}: ${oneLine(e.message ?? String(err))}`);
    return 1;
  }
}
