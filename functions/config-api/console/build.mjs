// Builds the console into dist/ (committed; the config API compiles it in). Deterministic: the
// same sources and pinned tools give the same bytes, which `make test` checks.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

// `node build.mjs [outdir]`: dist/ by default; the check in `make test` builds elsewhere and
// compares with the committed dist/.
const out = process.argv[2] ?? "dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: "src/main.tsx" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2022"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  charset: "utf8",
  outdir: out,
  logLevel: "warning",
});
await build({
  entryPoints: { app: "src/app.css" },
  bundle: true,
  minify: true,
  outdir: out,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
});
copyFileSync("static/index.html", `${out}/index.html`);
copyFileSync("static/favicon.svg", `${out}/favicon.svg`);
