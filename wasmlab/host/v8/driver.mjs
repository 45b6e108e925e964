// The lab's V8 host: one long-lived node process serving blocks of requests through the WebAssembly JS API.
//
// Protocol: one JSON object per line on stdin, one JSON reply per line on stdout.
//   {"op": "load", "workloads": [{name, wasm (base64), entry, params, results, args, expected, check}]}
//       -> {"ok": true, "v8": process.versions.v8, "node": process.versions.node}
//   {"op": "block", "variant": name, "cached": bool, "reuse": N, "indices": [...]}
//       -> {"ok": true, "ns": [...], "fresh": [...], "failures": [[k, message]], "wall_ns": n, "compiles": n}
//       or {"ok": false, "mismatch": message, "at": k} when request k returned a wrong result (the block stops there).
// Every request's time is taken here with process.hrtime.bigint(): compile (baseline) or the cached module,
// new WebAssembly.Instance, the call, and the comparison of its result with the expectation.
// V8 caches compiled code for identical bytes within a process, so baseline makes each request's bytes unique
// with a custom section holding a counter (built before the block's timed loop: it is the lab's work, not V8's).
import { createInterface } from "node:readline";

const UNIQUE = Buffer.from("wasmlab.unique");
let workloads = [];
let uniqueCounter = 0n;
const variants = new Map(); // variant name -> {modules: [], instances: [], served: [], first: []}

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
  }));
  variants.clear();
  return { ok: true, v8: process.versions.v8, node: process.versions.node };
}

function stateOf(name) {
  if (!variants.has(name)) {
    variants.set(name, { modules: [], instances: [], served: [], first: [] });
  }
  return variants.get(name);
}

function show(value) {
  return typeof value === "bigint" ? value.toString() : JSON.stringify(value);
}

function block(message) {
  const { indices, cached, reuse } = message;
  const state = stateOf(message.variant);
  const n = indices.length;
  const ns = new Array(n);
  const fresh = new Array(n);
  const failures = [];
  let compiles = 0;
  // Baseline: each request's own bytes, made before the timed loop.
  const bytes = cached ? null : indices.map((i) => uniqueBytes(workloads[i].wasm));
  const started = process.hrtime.bigint();
  for (let k = 0; k < n; k++) {
    const index = indices[k];
    const w = workloads[index];
    const t0 = process.hrtime.bigint();
    let result;
    try {
      let instance = reuse > 1 && (state.served[index] || 0) % reuse !== 0 ? state.instances[index] : null;
      fresh[k] = instance === null;
      if (instance === null) {
        let module = cached ? state.modules[index] : null;
        if (!module) {
          module = new WebAssembly.Module(cached ? w.wasm : bytes[k]);
          compiles++;
          if (cached) state.modules[index] = module;
        }
        instance = new WebAssembly.Instance(module, {});
        state.instances[index] = reuse > 1 ? instance : null;
        state.served[index] = 0;
      }
      state.served[index]++;
      result = instance.exports[w.entry](...w.args);
    } catch (error) {
      ns[k] = Number(process.hrtime.bigint() - t0);
      state.served[index] = 0; // a failed instance is not reused
      if (!(error instanceof WebAssembly.RuntimeError) && !(error instanceof RangeError)) throw error;
      failures.push([k, `${error.constructor.name}: ${error.message}`]);
      continue;
    }
    let wrong = null;
    if (w.expected !== null && result !== w.expected) {
      wrong = `workload '${w.name}' returned ${show(result)}, expected ${show(w.expected)}: the request did not do its work`;
    } else if (w.check === "first-result" && w.results.length) {
      if (state.first[index] === undefined) state.first[index] = result;
      else if (result !== state.first[index]) {
        wrong = `workload '${w.name}' returned ${show(result)}, but its first request returned ${show(state.first[index])}`;
      }
    }
    ns[k] = Number(process.hrtime.bigint() - t0);
    if (wrong !== null) return { ok: false, mismatch: wrong, at: k };
  }
  const wall = Number(process.hrtime.bigint() - started);
  return { ok: true, ns, fresh, failures, wall_ns: wall, compiles };
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
