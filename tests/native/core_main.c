/*
 * The driver's core served from C alone: no Python.h, no CPython.  Built with the core files of wasmlab/native/ only
 * (tests/native/test_core.py compiles and runs it; `make test-sanitize` runs it under ASan and UBSan with leak detection
 * on), it dlopens the libwasmtime given on the command line, makes a pooling engine through engine.c, and serves
 * requests of the module below through request_loop.c: plain calls, a trap, a recipe program, a learned result, then
 * a wrong expectation and a missing export (each of which stops its block).  Every result is checked; any failure
 * prints one line and exits 1.
 *
 *   usage: core_main LIBWASMTIME [REQUESTS]
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "library.h"
#include "program.h"
#include "request_loop.h"

/* (module
 *   (memory (export "memory") 1)
 *   (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
 *   (func (export "touch") (param i64) (result i64)
 *     (i64.store (i32.const 4096) (local.get 0))
 *     (i64.add (i64.load (i32.const 4096)) (i64.extend_i32_u (memory.size))))
 *   (func (export "boom") unreachable)) */
static const uint8_t MODULE[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0f, 0x03, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x60,
    0x01, 0x7e, 0x01, 0x7e, 0x60, 0x00, 0x00, 0x03, 0x04, 0x03, 0x00, 0x01, 0x02, 0x05, 0x03, 0x01, 0x00, 0x01,
    0x07, 0x1f, 0x04, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x03, 0x61, 0x64, 0x64, 0x00, 0x00,
    0x05, 0x74, 0x6f, 0x75, 0x63, 0x68, 0x00, 0x01, 0x04, 0x62, 0x6f, 0x6f, 0x6d, 0x00, 0x02, 0x0a, 0x22, 0x03,
    0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b, 0x14, 0x00, 0x41, 0x80, 0x20, 0x20, 0x00, 0x37, 0x03, 0x00,
    0x41, 0x80, 0x20, 0x29, 0x03, 0x00, 0x3f, 0x00, 0xad, 0x7c, 0x0b, 0x03, 0x00, 0x00, 0x0b,
};

static int failures;

static void expect(int ok, const char *what, long long got, long long wanted) {
    if (!ok && failures++ == 0)
        printf("core: %s: got %lld, expected %lld\n", what, got, wanted);
}

/* A call of `entry` with up to two arguments of `kind`, its result checked against `expected` by `check`. */
static Workload call(const char *entry, uint8_t kind, int nargs, int64_t a, int64_t b, int check, int64_t expected) {
    Workload w;
    memset(&w, 0, sizeof w);
    w.wasm = malloc(sizeof MODULE);
    memcpy(w.wasm, MODULE, sizeof MODULE);
    w.wasm_len = sizeof MODULE;
    memset(w.sha256, 0x5a, sizeof w.sha256); /* one module: one key */
    w.entry = strdup(entry);
    w.entry_len = strlen(entry);
    w.nargs = nargs;
    w.args[0] = a;
    w.args[1] = b;
    w.arg_kinds[0] = w.arg_kinds[1] = kind;
    w.nslots = nargs > 1 ? (size_t)nargs : 1;
    w.result_kind = strcmp(entry, "boom") == 0 ? KIND_NONE : kind;
    w.check = check;
    w.expected = expected;
    return w;
}

/* A recipe: write "hello" at 128, call add(2, 3) as its own step, read the 5 bytes back (every request's equal the first's). */
static Workload recipe(void) {
    Workload w = call("(recipe)", KIND_I32, 0, 0, 0, CHECK_EXPECTED, 5);
    Program *p = program_new(5, "memory", 6, 1);
    Op *op = p->ops;
    op[0] = (Op){.op = OP_WRITE, .at = {-1, 128}, .data = (uint8_t *)strdup("hello"), .len = 5, .dst = -1};
    op[1] = (Op){.op = OP_STAMP, .dst = -1};
    op[2] = (Op){.op = OP_CALL, .name = strdup("add"), .name_len = 3, .nargs = 2, .args = {{-1, 2}, {-1, 3}},
                 .arg_kinds = {KIND_I32, KIND_I32}, .result_kind = KIND_I32, .nslots = 2, .dst = 0, .top = 1};
    op[3] = (Op){.op = OP_STAMP, .dst = -1};
    op[4] = (Op){.op = OP_READ, .at = {-1, 128}, .value = {-1, 5}, .read = 0, .dst = -1};
    p->nops = 5;
    w.program = p;
    return w;
}

/* Serve `n` requests of `which` (cycled), each record checked against its workload's expected outcome and detail. */
static void serve(Driver *d, const int32_t *cycle, int ncycle, const int *outcomes, const int64_t *details, size_t n) {
    int32_t *which = malloc(n * sizeof *which);
    int64_t *records = calloc(n * RECORD_WORDS, sizeof *records);
    int64_t *stamps = calloc(n * STAMPS, sizeof *stamps);
    for (size_t i = 0; i < n; i++) which[i] = cycle[i % (size_t)ncycle];
    Block block = {which, n, records, stamps, NULL, NULL};
    driver_serve_block(d, &block);
    for (size_t i = 0; i < n; i++) {
        const int64_t *row = records + i * RECORD_WORDS;
        int k = (int)(i % (size_t)ncycle);
        expect(row[1] == outcomes[k], "outcome", row[1], outcomes[k]);
        expect(row[1] != OUT_OK || row[2] == details[k], "result", row[2], details[k]);
        expect(row[1] < 0 || row[0] > 0, "request ns", row[0], 1);
        expect(row[1] != OUT_OK || stamps[i * STAMPS + 7] >= stamps[i * STAMPS], "last stamp", stamps[i * STAMPS + 7], stamps[i * STAMPS]);
    }
    free(which);
    free(records);
    free(stamps);
}

/* Plain calls, a trap, a recipe and a learned result, `n` requests; then a block stopped by a wrong expectation, one
 * stopped by a missing export. */
static void serve_everything(Driver *d, size_t n) {
    Workload added[] = {call("add", KIND_I32, 2, 40, 2, CHECK_EXPECTED, 42), call("touch", KIND_I64, 1, 1000, 0, CHECK_EXPECTED, 1001),
                        call("boom", KIND_I32, 0, 0, 0, CHECK_NONE, 0), recipe(), call("touch", KIND_I64, 1, 7, 0, CHECK_FIRST, 0),
                        call("add", KIND_I32, 2, 1, 1, CHECK_EXPECTED, 3), call("absent", KIND_I32, 0, 0, 0, CHECK_NONE, 0)};
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++)
        expect(driver_add(d, &added[i]) == (int)i, "workload index", (long long)i, (long long)i);
    const int32_t mixed[] = {0, 1, 2, 3, 4};
    const int ok[] = {OUT_OK, OUT_OK, OUT_TRAP, OUT_OK, OUT_OK};
    const int64_t results[] = {42, 1001, 0, 5, 8};
    serve(d, mixed, 5, ok, results, n);
    expect(d->has_message && strncmp(d->first_message, "Trap: ", 6) == 0, "a trap's message kept", d->has_message, 1);
    const int32_t wrong[] = {5, 0};
    const int stopped[] = {OUT_MISMATCH, -1};
    serve(d, wrong, 2, stopped, results, 2);
    const int32_t absent[] = {6, 0};
    const int missing[] = {OUT_NO_EXPORT, -1};
    serve(d, absent, 2, missing, results, 2);
}

/* A loop that checks only a workload's first result must fail here: "counted" asks the host which request it is and
 * answers 42, except 41 at the third.  (module (import "core" "next" (func $next (result i32)))
 *   (func (export "counted") (result i32) (if (result i32) (i32.eq (call $next) (i32.const 3)) (then (i32.const 41)) (else (i32.const 42))))) */
static const uint8_t COUNTED[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x02, 0x0d, 0x01, 0x04, 0x63,
    0x6f, 0x72, 0x65, 0x04, 0x6e, 0x65, 0x78, 0x74, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x0b, 0x01, 0x07, 0x63, 0x6f,
    0x75, 0x6e, 0x74, 0x65, 0x64, 0x00, 0x01, 0x0a, 0x11, 0x01, 0x0f, 0x00, 0x10, 0x00, 0x41, 0x03, 0x46, 0x04, 0x7f, 0x41,
    0x29, 0x05, 0x41, 0x2a, 0x0b, 0x0b,
};

/* wasm.h's and wasmtime's linker functions the driver itself does not need, declared here as the library exports them. */
typedef struct { size_t size; void **data; } valtype_vec;
typedef void *(*valtype_new_fn)(uint8_t);
typedef void (*valtype_vec_new_fn)(valtype_vec *, size_t, void *const *);
typedef void *(*functype_new_fn)(valtype_vec *, valtype_vec *);
typedef void (*functype_delete_fn)(void *);
typedef wasm_trap_t *(*unchecked_fn)(void *, void *, wasmtime_val_raw_t *, size_t);
typedef wasmtime_error_t *(*define_fn)(wasmtime_linker_t *, const char *, size_t, const char *, size_t, const void *, unchecked_fn, void *,
                                       void (*)(void *));

static int32_t counted_calls;

static wasm_trap_t *count_call(void *env, void *caller, wasmtime_val_raw_t *values, size_t n) {
    values[0].i32 = ++counted_calls;
    return NULL;
}

/* core.next defined on the driver's own linker (the InstancePre driver's), then 5 requests of "counted": requests 1
 * and 2 are right, request 3 must stop the block with a mismatch, after exactly 3 calls. */
static void serve_counted(Driver *d, void *handle) {
    valtype_new_fn valtype_new = (valtype_new_fn)dlsym(handle, "wasm_valtype_new");
    valtype_vec_new_fn vec_new = (valtype_vec_new_fn)dlsym(handle, "wasm_valtype_vec_new");
    functype_new_fn functype_new = (functype_new_fn)dlsym(handle, "wasm_functype_new");
    functype_delete_fn functype_delete = (functype_delete_fn)dlsym(handle, "wasm_functype_delete");
    define_fn define = (define_fn)dlsym(handle, "wasmtime_linker_define_func_unchecked");
    if (!valtype_new || !vec_new || !functype_new || !functype_delete || !define || d->linker == NULL) {
        expect(0, "linker functions found", 0, 1);
        return;
    }
    void *i32 = valtype_new(0 /* WASM_I32 */);
    valtype_vec params = {0, NULL}, results;
    vec_new(&results, 1, &i32);
    void *type = functype_new(&params, &results);
    wasmtime_error_t *err = define(d->linker, "core", 4, "next", 4, type, count_call, NULL, NULL);
    functype_delete(type);
    expect(err == NULL, "core.next defined", err != NULL, 0);
    if (err != NULL)
        return;
    Workload w = call("counted", KIND_I32, 0, 0, 0, CHECK_EXPECTED, 42);
    free(w.wasm);
    w.wasm = malloc(sizeof COUNTED);
    memcpy(w.wasm, COUNTED, sizeof COUNTED);
    w.wasm_len = sizeof COUNTED;
    memset(w.sha256, 0x77, sizeof w.sha256);
    int index = driver_add(d, &w);
    const int32_t cycle[] = {index, index, index, index, index};
    const int outcomes[] = {OUT_OK, OUT_OK, OUT_MISMATCH, -1, -1};
    const int64_t details[] = {42, 42, 41, 0, 0};
    counted_calls = 0;
    serve(d, cycle, 5, outcomes, details, 5);
    expect(counted_calls == 3, "calls of the counting host function", counted_calls, 3);
}

/* An instance reused across requests must fail here: "run" marks its memory and a global and traps if it finds either
 * mark (tests/host/test_cheats.py's MARKED); a fresh instance returns 7. */
static const uint8_t MARKED[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00, 0x05,
    0x03, 0x01, 0x00, 0x01, 0x06, 0x06, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b, 0x07, 0x10, 0x02, 0x06, 0x6d, 0x65, 0x6d, 0x6f,
    0x72, 0x79, 0x02, 0x00, 0x03, 0x72, 0x75, 0x6e, 0x00, 0x00, 0x0a, 0x1f, 0x01, 0x1d, 0x00, 0x23, 0x00, 0x41, 0x80, 0x08,
    0x28, 0x02, 0x00, 0x72, 0x04, 0x40, 0x00, 0x0b, 0x41, 0x01, 0x24, 0x00, 0x41, 0x80, 0x08, 0x41, 0x01, 0x36, 0x02, 0x00,
    0x41, 0x07, 0x0b,
};

/* 8 requests of "run", more than the pool's 4 slots: every one must find a fresh instance. */
static void serve_marked(Driver *d) {
    Workload w = call("run", KIND_I32, 0, 0, 0, CHECK_EXPECTED, 7);
    free(w.wasm);
    w.wasm = malloc(sizeof MARKED);
    memcpy(w.wasm, MARKED, sizeof MARKED);
    w.wasm_len = sizeof MARKED;
    memset(w.sha256, 0x33, sizeof w.sha256);
    int index = driver_add(d, &w);
    const int32_t cycle[] = {index};
    const int fresh[] = {OUT_OK};
    const int64_t seven[] = {7};
    serve(d, cycle, 1, fresh, seven, 8);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s LIBWASMTIME [REQUESTS]\n", argv[0]);
        return 2;
    }
    size_t n = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1000;
    void *handle = library_open(argv[1]);
    if (handle == NULL) {
        printf("core: cannot open %s: %s\n", argv[1], dlerror());
        return 1;
    }
    static Api api;
    const char *lacking = library_resolve(handle, &api);
    const Knob pool[] = {{"total_core_instances", 4}, {"total_memories", 4}, {"total_tables", 4}, {"max_memory_size", 1 << 20}};
    char missing[160];
    engine_delete_fn engine_delete = NULL;
    wasm_engine_t *engine = lacking ? NULL : engine_new(handle, pool, 4, NULL, 0, &engine_delete, missing, sizeof missing);
    if (engine == NULL) {
        printf("core: no pooling engine: %s\n", lacking ? lacking : missing);
        return 1;
    }
    /* Cached with InstancePre (the driver's own linker), then compiled per request. */
    const struct { int capacity, pre; size_t requests; } drivers[] = {{2, 1, n}, {0, 0, n < 20 ? n : 20}};
    for (size_t k = 0; k < sizeof drivers / sizeof drivers[0]; k++) {
        Driver d;
        if (driver_init(&d, &api, engine, drivers[k].capacity, drivers[k].pre, NULL) != 0) {
            printf("core: out of memory\n");
            return 1;
        }
        serve_everything(&d, drivers[k].requests);
        uint64_t compiles = drivers[k].capacity ? 1 : drivers[k].requests + 2;
        expect(d.cache.misses == compiles, "compiles", (long long)d.cache.misses, (long long)compiles);
        if (drivers[k].pre)
            serve_counted(&d, handle);
        serve_marked(&d);
        driver_clear(&d);
    }
    engine_delete(engine);
    dlclose(handle);
    if (failures) {
        printf("core: %d checks failed\n", failures);
        return 1;
    }
    printf("core: %zu requests served on a pooling engine through the C core alone, every result checked\n", n);
    return 0;
}
