#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx's CommonJS hook, so `npx cliplab` works right
// after `npm ci` with no build step.
require("tsx/cjs");
const { main } = require("../src/cli/main.ts");
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`cliplab: ${err && err.message ? err.message.split("\n")[0] : err}\n`);
    process.exit(1);
  },
);
