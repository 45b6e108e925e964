/*
 * The seed request as a bare C loop: nothing but the six C calls and a clock pair, no lab, no Python.
 *
 * The native call path's floor: the same module as the lab's seed (one 64 KiB page, run(x) = x + 1),
 * the same pooling engine as the seed preset (20 slots), compiled once; then per request
 * wasmtime_store_new, wasmtime_store_context, wasmtime_instance_new, wasmtime_instance_export_get,
 * wasmtime_func_call_unchecked and wasmtime_store_delete, the result checked.  It dlopens the libwasmtime
 * it is given (wasmtime-py's wheel ships one) and declares what it calls itself, sharing no code with the
 * lab's driver (wasmlab/native/), so it checks it independently.
 *
 *   cc -O2 -o bare_loop benchmarks/bare_loop.c -ldl
 *   ./bare_loop LIBWASMTIME [requests=1000] [repeats=5] [warmup=200]
 *
 * Prints one JSON line: the mean and median per repetition in µs.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { size_t size; char *data; } byte_vec;
typedef struct { uint64_t store_id; size_t private_; } instance_t;
typedef struct { uint64_t store_id; size_t private_; } func_t;
typedef struct { uint8_t kind; union { func_t func; struct { uint64_t a; size_t b; uint32_t c; } memory; void *p; } of; } extern_t;
typedef union { int32_t i32; int64_t i64; uint8_t v128[16]; } val_raw;

static void *lib;
static void *need(const char *name) {
    void *f = dlsym(lib, name);
    if (!f) { fprintf(stderr, "libwasmtime has no function %s\n", name); exit(2); }
    return f;
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int compare(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s LIBWASMTIME [requests] [repeats] [warmup]\n", argv[0]); return 2; }
    int requests = argc > 2 ? atoi(argv[2]) : 1000, repeats = argc > 3 ? atoi(argv[3]) : 5, warmup = argc > 4 ? atoi(argv[4]) : 200;
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "cannot open %s: %s\n", argv[1], dlerror()); return 2; }

    void *(*config_new)(void) = need("wasm_config_new");
    void *(*pool_new)(void) = need("wasmtime_pooling_allocation_config_new");
    void (*pool_delete)(void *) = need("wasmtime_pooling_allocation_config_delete");
    const char *knobs[] = {"wasmtime_pooling_allocation_config_total_core_instances_set", "wasmtime_pooling_allocation_config_total_memories_set",
                           "wasmtime_pooling_allocation_config_total_tables_set", "wasmtime_pooling_allocation_config_total_stacks_set"};
    void (*strategy_set)(void *, const void *) = need("wasmtime_pooling_allocation_strategy_set");
    void *(*engine_new)(void *) = need("wasm_engine_new_with_config");
    void *(*wat2wasm)(const char *, size_t, byte_vec *) = need("wasmtime_wat2wasm");
    void *(*module_new)(void *, const uint8_t *, size_t, void **) = need("wasmtime_module_new");
    void *(*store_new)(void *, void *, void (*)(void *)) = need("wasmtime_store_new");
    void *(*store_context)(void *) = need("wasmtime_store_context");
    void (*store_delete)(void *) = need("wasmtime_store_delete");
    void *(*instance_new)(void *, const void *, const void *, size_t, instance_t *, void **) = need("wasmtime_instance_new");
    bool (*export_get)(void *, const instance_t *, const char *, size_t, extern_t *) = need("wasmtime_instance_export_get");
    void *(*call)(void *, const func_t *, val_raw *, size_t, void **) = need("wasmtime_func_call_unchecked");

    void *config = config_new();
    void *pool = pool_new();
    for (int k = 0; k < 4; k++) ((void (*)(void *, uint32_t))need(knobs[k]))(pool, 20);
    strategy_set(config, pool);
    pool_delete(pool);
    void *engine = engine_new(config);
    const char *wat = "(module (memory 1) (func (export \"run\") (param i32) (result i32) local.get 0 i32.const 1 i32.add))";
    byte_vec wasm = {0, NULL};
    void *module = NULL;
    if (wat2wasm(wat, strlen(wat), &wasm) || module_new(engine, (const uint8_t *)wasm.data, wasm.size, &module)) {
        fprintf(stderr, "the seed module does not compile\n");
        return 1;
    }

    int64_t *samples = malloc(sizeof(int64_t) * (size_t)(requests > warmup ? requests : warmup));
    printf("{\"requests\": %d, \"repeats\": %d, \"warmup\": %d, \"crossings_per_request\": 6, \"per_repetition\": [", requests, repeats, warmup);
    for (int rep = -1; rep < repeats; rep++) {
        int n = rep < 0 ? warmup : requests;
        for (int i = 0; i < n; i++) {
            int64_t t0 = now_ns();
            void *store = store_new(engine, NULL, NULL);
            void *context = store_context(store);
            instance_t instance;
            void *trap = NULL;
            if (instance_new(context, module, NULL, 0, &instance, &trap) || trap) { fprintf(stderr, "instantiation failed\n"); return 1; }
            extern_t item;
            if (!export_get(context, &instance, "run", 3, &item)) { fprintf(stderr, "no export run\n"); return 1; }
            val_raw value;
            value.i64 = 0;
            value.i32 = 41;
            if (call(context, &item.of.func, &value, 1, &trap) || trap) { fprintf(stderr, "call failed\n"); return 1; }
            int32_t result = value.i32;
            store_delete(store);
            if (result != 42) { fprintf(stderr, "run(41) returned %d\n", result); return 1; }
            samples[i] = now_ns() - t0;
        }
        if (rep < 0)
            continue;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += (double)samples[i];
        qsort(samples, (size_t)n, sizeof(int64_t), compare);
        double median = n % 2 ? (double)samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2.0;
        printf("%s{\"mean_us\": %.4f, \"p50_us\": %.4f}", rep ? ", " : "", sum / n / 1000, median / 1000);
    }
    printf("]}\n");
    return 0;
}
