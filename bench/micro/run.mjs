// Runs the wasm32-wasip1 micro-benchmark in Node's V8 through node:wasi (WASI preview1).
// Usage: node --no-liftoff bench/micro/run.mjs MICRO.wasm DATA_DIR
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, exit } from 'node:process';

const [wasmPath, dataDir] = argv.slice(2);
const wasi = new WASI({
  version: 'preview1',
  args: ['micro', '/data'],
  env: {},
  preopens: { '/data': dataDir },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
// The library also holds the proxy-wasm adapter, whose host imports (module "env") are never
// called here: each is given a function returning 0.
const env = Object.fromEntries(
  WebAssembly.Module.imports(module)
    .filter((i) => i.module === 'env' && i.kind === 'function')
    .map((i) => [i.name, () => 0]),
);
const instance = await WebAssembly.instantiate(module, { ...wasi.getImportObject(), env });
// The adapter's reactor entry point (`_initialize`) is left out: this is a command (`_start`).
const { _initialize, ...exports } = instance.exports;
exit(wasi.start({ exports }));
