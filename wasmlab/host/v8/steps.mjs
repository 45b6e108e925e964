// A recipe's steps on one V8 instance: the lab's step interpreter (wasmlab/host/recipes.py, run_steps) in JavaScript,
// one function per step kind, and the check of a request's outcome as the native path makes it (the expected result
// every request; each checked read, and the result under first-result checking, against the first request's, whose
// outcome the lab checks with its own checker).
//
// A recipe arrives as plain JSON (wasmlab/host/v8/steps.py): {memory, allocator, signatures: {export: [params,
// results]}, steps: [{kind: "call" | "write" | "read", ...}], expected, same_as_first, compared}.  Integers cross as
// decimal strings (int64 offsets are exact past 2**53) and are BigInt here; written bytes cross in base64.

// A step that cannot run as written (a write past the memory's end, a call used as a value that returns nothing):
// the lab's RecipeError, raised in one line.
export class StepError extends Error {}

// A WASI guest's proc_exit during the steps (the driver's own proc_exit throws it): the request ends with its status.
export class GuestExit extends Error {
  constructor(code) {
    super(`exit ${code}`);
    this.code = code;
  }
}

function expression(e) {
  return { name: e.name, offset: BigInt(e.offset), call: e.call ? callOf(e.call) : null, load: e.load ? expression(e.load) : null };
}

function argument(a) {
  return a.ptr_array ? { items: a.ptr_array.map(expression), at: a.at ? expression(a.at) : null } : expression(a);
}

function callOf(c) {
  return { export: c.export, args: c.args.map(argument), as: c.as, where: c.where };
}

const LOADED = {
  call: (s) => ({ kind: "call", ...callOf(s) }),
  write: (s) => ({ kind: "write", at: expression(s.at), data: Buffer.from(s.data, "base64"), where: s.where }),
  read: (s) => ({ kind: "read", at: expression(s.at), length: expression(s.length), name: s.name, where: s.where }),
};

// The recipe of one workload as the driver keeps it: expressions with BigInt offsets, written bytes decoded.
export function loadRecipe(r) {
  return { ...r, steps: r.steps.map((s) => LOADED[s.kind](s)), expected: r.expected === null ? null : BigInt(r.expected) };
}

// A recipe's imports: stubs ({"module.name": [value, result kind or null]}) as an import object: each returns its
// constant (BigInt for an i64), or nothing.
export function stubImports(stubs) {
  const imports = {};
  for (const [key, [value, kind]] of Object.entries(stubs ?? {})) {
    const dot = key.indexOf(".");
    const [module, name] = [key.slice(0, dot), key.slice(dot + 1)];
    const returned = kind === null ? undefined : kind === "i64" ? BigInt(value) : Number(value);
    (imports[module] ??= {})[name] = () => returned;
  }
  return imports;
}

// One request's run of the steps: its named values, the step running, the last call's result and the reads.
class Run {
  constructor(recipe, instance) {
    this.recipe = recipe;
    this.exports = instance.exports;
    this.values = new Map();
    this.where = "steps";
    this.result = null;
    this.reads = new Map();
    this.exit = null; // a WASI guest's exit status, when a step exited
  }

  // The memory's bytes now (a call may have grown it, which detaches the buffer seen before).
  bytes() {
    const memory = this.exports[this.recipe.memory];
    if (!(memory instanceof WebAssembly.Memory)) {
      throw new StepError(`recipe memory: the module exports no memory named '${this.recipe.memory}'`);
    }
    return memory.buffer;
  }

  // ``length`` bytes at ``at`` as a view of the memory, or the lab's one line when they run past its end.
  bounded(at, length, where) {
    const buffer = this.bytes();
    const size = BigInt(buffer.byteLength);
    if (at < 0n || length < 0n || at + length > size) {
      throw new StepError(`recipe ${where}: ${length} bytes at ${at} run past the memory's end (${size} bytes); ` +
        `allowed: 0 <= at and at + length <= ${size}`);
    }
    return new Uint8Array(buffer, Number(at), Number(length));
  }

  value(e) {
    if (e.load !== null) {
      const word = this.bounded(this.value(e.load), 4n, `${this.where}.load`);
      return BigInt(new DataView(word.buffer, word.byteOffset, 4).getUint32(0, true)) + e.offset;
    }
    if (e.call !== null) {
      const result = this.call(e.call);
      if (result === null) throw new StepError(`recipe ${e.call.where}: export '${e.call.export}' returns nothing, so it has no value`);
      return result + e.offset;
    }
    return (e.name !== null ? this.values.get(e.name) : 0n) + e.offset;
  }

  // An argument's value; a pointer array's items written into memory (at ``at``, else where the allocator says).
  argument(a, where) {
    if (a.items === undefined) return this.value(a);
    const data = Buffer.alloc(4 * a.items.length);
    a.items.forEach((item, i) => data.writeUInt32LE(Number(BigInt.asUintN(32, this.value(item))), 4 * i));
    const at = a.at !== null ? this.value(a.at) : this.invoke(this.recipe.allocator, [BigInt(data.length)]);
    if (at === null) throw new StepError(`recipe ${where}: allocator '${this.recipe.allocator}' returned nothing`);
    this.bounded(at, BigInt(data.length), where).set(data);
    return at;
  }

  call(c) {
    return this.invoke(c.export, c.args.map((a, i) => this.argument(a, `${c.where}.args[${i}]`)));
  }

  // An export called with BigInt values, passed as its types take them (i32 wrapped to 32 bits as the C API's raw
  // words are, i64 as BigInt); its result as a BigInt, or null when it returns nothing.
  invoke(name, args) {
    const [params, results] = this.recipe.signatures[name];
    const passed = args.map((v, i) => (params[i] === "i64" ? BigInt.asIntN(64, v) : Number(BigInt.asIntN(32, v))));
    const result = this.exports[name](...passed);
    return results.length ? BigInt(result) : null;
  }
}

const STEP = {
  call(run, step) {
    const result = run.call(step);
    if (step.as !== null) {
      if (result === null) throw new StepError(`recipe ${step.where}.as: export '${step.export}' returns nothing to name`);
      run.values.set(step.as, result);
    }
    run.result = result;
  },
  write(run, step) {
    run.bounded(run.value(step.at), BigInt(step.data.length), `${step.where}.write`).set(step.data);
  },
  read(run, step) {
    const at = run.value(step.at);
    run.reads.set(step.name, Buffer.from(run.bounded(at, run.value(step.length), `${step.where}.read`))); // a copy
  },
};

// Every step of ``recipe`` on ``instance``, in order: the run (its result and reads).  A WASI exit ends the request (its
// status the run's exit, as on the lab's paths); a trap is thrown as V8 throws it.
export function runSteps(recipe, instance) {
  const run = new Run(recipe, instance);
  try {
    for (const step of recipe.steps) {
      run.where = step.where;
      STEP[step.kind](run, step);
    }
  } catch (error) {
    if (!(error instanceof GuestExit)) throw error;
    run.exit = error.code;
  }
  return run;
}

function hex(data) {
  return `'${data.subarray(0, 32).toString("hex")}'${data.length > 32 ? ` (${data.length} bytes)` : ""}`; // as the lab's show 64 digits
}

function shown(result) {
  return result === null ? "None" : result.toString(); // as the lab's messages print a missing result
}

// What is wrong with request's ``run`` of workload ``w`` (the recipe's name ``label``), or null; ``first`` is the
// first request's run, null for the first request itself (which the lab checks with its own checker).
export function stepsWrong(recipe, label, run, first) {
  if (recipe.exit !== null && (run.exit ?? 0) !== recipe.exit) return `recipe '${label}': exit ${run.exit ?? 0}, expected exit ${recipe.exit}`;
  if (recipe.expected !== null && run.result !== recipe.expected) {
    return `recipe '${label}': result ${shown(run.result)}, expected ${recipe.expected}`;
  }
  if (first === null) return null;
  if (recipe.same_as_first && run.exit !== first.exit) {
    return `recipe '${label}': exit ${run.exit ?? 0}, but its first request's was ${first.exit ?? 0}`;
  }
  if (recipe.same_as_first && run.result !== first.result) {
    return `recipe '${label}': result ${shown(run.result)}, but its first request's was ${shown(first.result)}`;
  }
  for (const name of recipe.compared) {
    const now = run.reads.get(name) ?? Buffer.alloc(0);
    const then = first.reads.get(name) ?? Buffer.alloc(0);
    if (!now.equals(then)) {
      return `recipe '${label}': bytes '${name}' ${hex(now)} differ from the first request's ${hex(then)}`;
    }
  }
  return null;
}

// A first request's outcome as the lab reads it: the last call's result (a decimal string, or null) and each read in base64.
export function outcomeOf(run) {
  const reads = {};
  for (const [name, data] of run.reads) reads[name] = data.toString("base64");
  return { result: run.result === null ? null : run.result.toString(), reads, exit: run.exit };
}
