// The lab's V8 host: one long-lived node process serving blocks of requests through the WebAssembly JS API.
//
// Protocol: one JSON object per line on stdin, one JSON reply per line on stdout.
//   {"op": "load", "workloads": [{name, wasm (base64), entry, params, results, args, expected, check, recipe, stubs}]}
//       -> {"ok": true, "v8": process.versions.v8, "node": process.versions.node}
//   {"op": "block", "variant": name, "cached": bool, "reuse": N, "indices": [...]}
//       -> {"ok": true, "ns": [...], "fresh": [...], "failures": [[k, message]], "wall_ns": n, "compiles": n,
//           "first_outputs": {...}, "first_outcomes": {...}, "check_ns": n}
//       or {"ok": false, "mismatch": message, "at": k} when request k returned a wrong result (the block stops there).
// Every request's time is taken here with process.hrtime.bigint(): compile (baseline) or the cached module,
// new WebAssembly.Instance, the call, and the comparison of its result with the expectation.
// V8 caches compiled code for identical bytes within a process, so baseline makes each request's bytes unique
// with a custom section holding a counter (built before the block's timed loop: it is the lab's work, not V8's).
// A WASI command ({wasi: true, argv, env, stdin, preopens, exit}) gets a fresh node:wasi WASI object per request, its
// stdin, stdout and stderr files opened before the request's clock starts and read after it stops; the reply's
// first_outputs holds a workload's first outputs (checked by the lab), every later request's must equal them.
// A guest driven by a recipe's steps ({recipe: {...}}, see steps.mjs) runs them on the request's instance in place of
// the entry call (a WASI one's: node:wasi given the instance's memory, not _start), checked inside the request's
// time as the lab's paths check them: the reply's first_outcomes holds a workload's first outcome (checked by the
// lab's own checker), every later one's checked reads must equal it; a step that cannot run as written ends the
// block with {ok: false, recipe_error: message, at: k}.  A recipe's imports: stubs ({stubs}) are JS functions
// returning their constants.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { WASI } from "node:wasi";
import { GuestExit, StepError, loadRecipe, outcomeOf, runSteps, stepsWrong, stubImports } from "./steps.mjs";

const UNIQUE = Buffer.from("wasmlab.unique");
let workloads = [];
let uniqueCounter = 0n;
const variants = new Map(); // variant name -> {modules: [], instances: [], served: [], first: [], firstOutputs: [], firstRuns: []}
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "wasmlab-v8-"));
process.on("exit", () => fs.rmSync(scratch, { recursive: true, force: true }));

function leb(n) {
  const out = [];
  do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n);
  return out;
}

function uniqueBytes(wasm) {
  const payload = Buffer.alloc(8);
  payload.writeBigUInt64LE(uniqueCounter++);
  const content = Buffer.concat([Buffer.from(leb(UNIQUE.length)), UNIQUE, payload]);
  return Buffer.concat([wasm, Buffer.from([0]), Buffer.from(leb(content.length)), content]);
}

function load(message) {
  workloads = message.workloads.map((w) => ({
    ...w,
    wasm: Buffer.from(w.wasm, "base64"),
    args: w.args.map((a, i) => (w.params[i] === "i64" ? BigInt(a) : a)),
    expected: w.check === "expected" && w.results.length ? (w.results[0] === "i64" ? BigInt(w.expected) : w.expected) : null,
    recipe: w.recipe ? loadRecipe(w.recipe) : null,
    imports: stubImports(w.stubs),
  }));
  workloads.forEach((w, i) => {
    if (!w.wasi) return;
    w.stdinPath = path.join(scratch, `stdin-${i}`);
    fs.writeFileSync(w.stdinPath, w.stdin === null ? Buffer.alloc(0) : Buffer.from(w.stdin, "base64"));
  });
  variants.clear();
  return { ok: true, v8: process.versions.v8, node: process.versions.node };
}

function stateOf(name) {
  if (!variants.has(name)) {
    variants.set(name, { modules: [], instances: [], served: [], first: [], firstOutputs: [], firstRuns: [] });
  }
  return variants.get(name);
}

function show(value) {
  return typeof value === "bigint" ? value.toString() : JSON.stringify(value);
}

// A WASI guest's imports: node:wasi's, and the recipe's stubs; for steps, a proc_exit that ends the steps (GuestExit).
function wasiImports(w, wasi) {
  const imports = { ...w.imports, ...wasi.getImportObject() };
  if (w.recipe !== null) imports.wasi_snapshot_preview1.proc_exit = (code) => { throw new GuestExit(code); };
  return imports;
}

// A WASI guest's instance driven by a recipe's steps: node:wasi given its memory without calling _initialize (the steps
// call it, as on wasmtime), then the steps, judged by ``judge`` inside the request's time.
function wasiSteps(w, wasi, module, judge) {
  const instance = new WebAssembly.Instance(module, wasiImports(w, wasi));
  wasi.initialize({ exports: { memory: instance.exports.memory } });
  const run = runSteps(w.recipe, instance);
  return { code: run.exit, judged: judge(run) };
}

// A WASI request: its files opened (stdout and stderr fresh), then the timed part (the module, compiled or cached, a
// WASI object, the instance, _start or the recipe's steps and their check), then its outputs read.  Returns {ns, code,
// outputs, error, judged}: a trap is the request's error, anything else is the driver's and thrown.
function wasiRequest(w, moduleOf, judge) {
  const fds = { stdin: fs.openSync(w.stdinPath, "r"), stdout: fs.openSync(path.join(scratch, "stdout"), "w+"),
    stderr: fs.openSync(path.join(scratch, "stderr"), "w+") };
  let code = null;
  let error = null;
  let judged = null;
  let t1;
  const t0 = process.hrtime.bigint();
  try {
    const wasi = new WASI({ version: "preview1", args: w.argv, env: w.env, preopens: w.preopens, returnOnExit: true, ...fds });
    if (w.recipe === null) code = wasi.start(new WebAssembly.Instance(moduleOf(), wasiImports(w, wasi)));
    else ({ code, judged } = wasiSteps(w, wasi, moduleOf(), judge));
  } catch (caught) {
    if (!(caught instanceof WebAssembly.RuntimeError) && !(caught instanceof RangeError)) throw caught;
    error = caught;
  } finally {
    t1 = process.hrtime.bigint(); // before the files close: closing them is the lab's bookkeeping, not the request's
    for (const fd of Object.values(fds)) fs.closeSync(fd);
  }
  const outputs = { stdout: fs.readFileSync(path.join(scratch, "stdout")), stderr: fs.readFileSync(path.join(scratch, "stderr")) };
  return { ns: Number(t1 - t0), code, outputs, error, judged, readNs: process.hrtime.bigint() - t1 };
}

// What differs between a WASI request's end and what it must be (its exit status, the first request's outputs), or null.
function wasiWrong(w, state, index, code, outputs, firstOutputs) {
  if (w.exit !== null && code !== w.exit) return `workload '${w.name}' exited with ${code}, expected ${w.exit}`;
  const first = state.firstOutputs[index];
  if (first === undefined) {
    state.firstOutputs[index] = outputs;
    firstOutputs[index] = { stdout: outputs.stdout.toString("base64"), stderr: outputs.stderr.toString("base64") };
    return null;
  }
  for (const stream of ["stdout", "stderr"]) {
    if (!outputs[stream].equals(first[stream])) {
      return `workload '${w.name}': ${stream} differs from the first request's (${outputs[stream].length} bytes against ${first[stream].length})`;
    }
  }
  return null;
}

function block(message) {
  const { indices, cached, reuse } = message;
  const state = stateOf(message.variant);
  const n = indices.length;
  const ns = new Array(n);
  const fresh = new Array(n);
  const failures = [];
  const firstOutputs = {};
  const firstOutcomes = {};
  let compiles = 0;
  let checkNs = 0n; // reading back and comparing WASI outputs: after each request's clock stops, reported apart
  // Baseline: each request's own bytes, made before the timed loop.
  const bytes = cached ? null : indices.map((i) => uniqueBytes(workloads[i].wasm));
  // Request k's module, inside its timed part: the variant's cached one, or compiled now (baseline: its own bytes).
  const moduleOf = (k, index) => {
    let module = cached ? state.modules[index] : null;
    if (!module) {
      module = new WebAssembly.Module(cached ? workloads[index].wasm : bytes[k]);
      compiles++;
      if (cached) state.modules[index] = module;
    }
    return module;
  };
  // A recipe's outcome of request k checked, inside the request's time: {wrong, learned} (the variant's first good one kept).
  const judge = (index, run) => {
    const first = state.firstRuns[index] ?? null;
    const wrong = stepsWrong(workloads[index].recipe, workloads[index].name, run, first);
    const learned = first === null && wrong === null;
    if (learned) state.firstRuns[index] = { result: run.result, reads: run.reads, exit: run.exit };
    return { wrong, learned };
  };
  const started = process.hrtime.bigint();
  for (let k = 0; k < n; k++) {
    const index = indices[k];
    const w = workloads[index];
    if (w.wasi) {
      fresh[k] = true; // node:wasi starts an instance once: a WASI command is never reused
      let done;
      try {
        done = wasiRequest(w, () => moduleOf(k, index), (run) => judge(index, run));
      } catch (error) {
        if (error instanceof StepError) return { ok: false, recipe_error: error.message, at: k };
        throw error;
      }
      ns[k] = done.ns;
      if (done.error !== null) {
        failures.push([k, `${done.error.constructor.name}: ${done.error.message}`]);
        continue;
      }
      if (done.judged?.wrong) return { ok: false, mismatch: done.judged.wrong, at: k };
      if (done.judged?.learned) firstOutcomes[index] = outcomeOf(state.firstRuns[index]);
      const checked = process.hrtime.bigint();
      const wrong = wasiWrong(w, state, index, done.code, done.outputs, firstOutputs);
      checkNs += process.hrtime.bigint() - checked + done.readNs;
      if (wrong !== null) return { ok: false, mismatch: wrong, at: k };
      continue;
    }
    const t0 = process.hrtime.bigint();
    let result;
    try {
      let instance = reuse > 1 && (state.served[index] || 0) % reuse !== 0 ? state.instances[index] : null;
      fresh[k] = instance === null;
      if (instance === null) {
        instance = new WebAssembly.Instance(moduleOf(k, index), w.imports);
        state.instances[index] = reuse > 1 ? instance : null;
        state.served[index] = 0;
      }
      state.served[index]++;
      result = w.recipe !== null ? runSteps(w.recipe, instance) : instance.exports[w.entry](...w.args);
    } catch (error) {
      ns[k] = Number(process.hrtime.bigint() - t0);
      state.served[index] = 0; // a failed instance is not reused
      if (error instanceof StepError) return { ok: false, recipe_error: error.message, at: k };
      if (!(error instanceof WebAssembly.RuntimeError) && !(error instanceof RangeError)) throw error;
      failures.push([k, `${error.constructor.name}: ${error.message}`]);
      continue;
    }
    let wrong = null;
    let learned = false; // this request's outcome is the variant's first of this recipe
    if (w.recipe !== null) {
      ({ wrong, learned } = judge(index, result));
    } else if (w.expected !== null && result !== w.expected) {
      wrong = `workload '${w.name}' returned ${show(result)}, expected ${show(w.expected)}: the request did not do its work`;
    } else if (w.check === "first-result" && w.results.length) {
      if (state.first[index] === undefined) state.first[index] = result;
      else if (result !== state.first[index]) {
        wrong = `workload '${w.name}' returned ${show(result)}, but its first request returned ${show(state.first[index])}`;
      }
    }
    ns[k] = Number(process.hrtime.bigint() - t0);
    if (wrong !== null) return { ok: false, mismatch: wrong, at: k };
    if (learned) firstOutcomes[index] = outcomeOf(state.firstRuns[index]); // for the lab, after the request's clock stopped
  }
  const wall = Number(process.hrtime.bigint() - started);
  return { ok: true, ns, fresh, failures, wall_ns: wall, compiles, first_outputs: firstOutputs,
    first_outcomes: firstOutcomes, check_ns: Number(checkNs) };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  let reply;
  try {
    const message = JSON.parse(line);
    reply = message.op === "load" ? load(message) : message.op === "block" ? block(message) : { ok: false, error: `unknown op ${message.op}` };
  } catch (error) {
    reply = { ok: false, error: `${error.constructor.name}: ${error.message}` };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
