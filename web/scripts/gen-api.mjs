#!/usr/bin/env node
// Refreshes the UI's API types from the server's OpenAPI document.
//
//   LUNORA_BIN=/path/to/lunora npm run gen:api   # snapshot from the binary, then types
//   npm run gen:api                              # types from the committed snapshot only
//
// 1. With a `lunora` binary (LUNORA_BIN, else target/debug/lunora or $CARGO_TARGET_DIR/debug/lunora
//    when present), `lunora openapi` is written to src/api/openapi.json: the committed snapshot.
// 2. openapi-typescript turns the snapshot into src/api/schema.d.ts (committed too, so building
//    the UI never needs the Rust binary).
// crates/lunora/tests/console.rs fails when either file differs from what the server says.

import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const snapshot = path.join('src', 'api', 'openapi.json');
const types = path.join('src', 'api', 'schema.d.ts');

const candidates = [
  process.env.LUNORA_BIN,
  process.env.CARGO_TARGET_DIR && path.join(process.env.CARGO_TARGET_DIR, 'debug', 'lunora'),
  path.join(web, '..', 'target', 'debug', 'lunora'),
].filter(Boolean);
const bin = candidates.find((c) => existsSync(c));

if (bin) {
  const doc = execFileSync(bin, ['openapi'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  JSON.parse(doc); // refuse to write anything that is not JSON
  writeFileSync(path.join(web, snapshot), doc.endsWith('\n') ? doc : `${doc}\n`);
  console.log(`gen:api: ${snapshot} from ${bin} openapi`);
} else if (process.env.LUNORA_BIN) {
  console.error(`gen:api: LUNORA_BIN=${process.env.LUNORA_BIN} does not exist`);
  process.exit(2);
} else {
  console.log(`gen:api: no lunora binary found (set LUNORA_BIN); using the committed ${snapshot}`);
}

execFileSync(
  process.execPath,
  [path.join('node_modules', 'openapi-typescript', 'bin', 'cli.js'), snapshot, '-o', types],
  { cwd: web, stdio: 'inherit' },
);
