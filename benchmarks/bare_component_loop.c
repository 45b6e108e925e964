/*
 * The lab's middleware component request as a bare C loop: nothing but the component C API calls and a clock pair, no
 * lab, no Python (issue 25; bare_loop.c is the same for core modules).
 *
 * The hand-written middleware (wasmlab/workloads/guests/middleware/middleware.wat), the auth-ok request (GET /v1/items,
 * 8 headers with the API key first, a 512-byte body: as wasmlab.workloads.middleware builds it), a pooling engine (20
 * slots), the component compiled once and its export index found once; then per request wasmtime_store_new,
 * wasmtime_store_context, wasmtime_component_linker_instantiate, wasmtime_component_instance_get_func,
 * wasmtime_component_func_call with the argument tree built once, wasmtime_component_func_post_return,
 * wasmtime_store_delete, the result's case checked ("modify") and the result freed (wasmtime_component_val_delete).
 * The lab's native path compares the whole result tree; this checks the case only, as a bare host might.  It dlopens the
 * libwasmtime it is given and declares what it calls itself, sharing no code with wasmlab/native/.
 *
 *   cc -O2 -o bare_component_loop benchmarks/bare_component_loop.c -ldl
 *   ./bare_component_loop LIBWASMTIME MIDDLEWARE.wat [requests=1000] [repeats=5] [warmup=200]
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
typedef struct val val;
struct val {
    uint8_t kind;
    union {
        uint8_t u8;
        byte_vec string;
        struct { size_t size; val *data; } list;         /* list, tuple */
        struct { size_t size; struct entry *data; } record;
        struct { byte_vec discriminant; val *payload; } variant;
        uint8_t pad[24];
    } of;
};
struct entry { byte_vec name; val v; };
typedef struct { uint64_t store_id; uint32_t private_; } instance_t;
typedef struct { struct { uint64_t store_id; uint32_t a; }; uint32_t b; void *c; } func_t;
enum { U8 = 2, STRING = 12, LIST = 13, RECORD = 14, TUPLE = 15, VARIANT = 16 };

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

static byte_vec text(const char *s) {
    byte_vec v = {strlen(s), malloc(strlen(s) + 1)};
    memcpy(v.data, s, v.size);
    return v;
}

static val string_val(const char *s) {
    val v;
    memset(&v, 0, sizeof v);
    v.kind = STRING;
    v.of.string = text(s);
    return v;
}

/* The auth-ok request record: method, path, 8 headers (the API key first, then the lab's filler), a 512-byte body. */
static val auth_ok_request(void) {
    static const char *headers[8][2] = {
        {"X-Api-Key", "let-me-in"}, {"accept", "application/json"}, {"user-agent", "wasmlab/0.1 (+https://example.invalid)"},
        {"accept-encoding", "gzip, deflate, br"}, {"content-type", "application/json"}, {"x-forwarded-for", "203.0.113.7"},
        {"x-forwarded-proto", "https"}, {"cache-control", "no-cache"}};
    static const char *fields[4] = {"method", "path", "headers", "body"};
    const char *pattern = "{\"item\": \"wasmlab\", \"quantity\": 1}\n";
    struct entry *e = calloc(4, sizeof *e);
    for (int i = 0; i < 4; i++) e[i].name = text(fields[i]);
    e[0].v = string_val("GET");
    e[1].v = string_val("/v1/items");
    e[2].v.kind = LIST;
    e[2].v.of.list.size = 8;
    e[2].v.of.list.data = calloc(8, sizeof(val));
    for (int i = 0; i < 8; i++) {
        val *pair = &e[2].v.of.list.data[i];
        pair->kind = TUPLE;
        pair->of.list.size = 2;
        pair->of.list.data = calloc(2, sizeof(val));
        pair->of.list.data[0] = string_val(headers[i][0]);
        pair->of.list.data[1] = string_val(headers[i][1]);
    }
    e[3].v.kind = LIST;
    e[3].v.of.list.size = 512;
    e[3].v.of.list.data = calloc(512, sizeof(val)); /* a list<u8> argument is one value per byte */
    for (int i = 0; i < 512; i++) {
        e[3].v.of.list.data[i].kind = U8;
        e[3].v.of.list.data[i].of.u8 = (uint8_t)pattern[i % strlen(pattern)];
    }
    val request;
    memset(&request, 0, sizeof request);
    request.kind = RECORD;
    request.of.record.size = 4;
    request.of.record.data = e;
    return request;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s LIBWASMTIME MIDDLEWARE.wat [requests] [repeats] [warmup]\n", argv[0]); return 2; }
    int requests = argc > 3 ? atoi(argv[3]) : 1000, repeats = argc > 4 ? atoi(argv[4]) : 5, warmup = argc > 5 ? atoi(argv[5]) : 200;
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "cannot open %s: %s\n", argv[1], dlerror()); return 2; }
    FILE *f = fopen(argv[2], "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", argv[2]); return 2; }
    static char wat[1 << 20];
    size_t wat_len = fread(wat, 1, sizeof wat, f);
    fclose(f);

    void *(*config_new)(void) = need("wasm_config_new");
    void *(*pool_new)(void) = need("wasmtime_pooling_allocation_config_new");
    void (*pool_delete)(void *) = need("wasmtime_pooling_allocation_config_delete");
    const char *knobs[] = {"wasmtime_pooling_allocation_config_total_core_instances_set", "wasmtime_pooling_allocation_config_total_memories_set",
                           "wasmtime_pooling_allocation_config_total_tables_set", "wasmtime_pooling_allocation_config_total_stacks_set",
                           "wasmtime_pooling_allocation_config_total_component_instances_set"};
    void (*strategy_set)(void *, const void *) = need("wasmtime_pooling_allocation_strategy_set");
    void *(*engine_new)(void *) = need("wasm_engine_new_with_config");
    void *(*wat2wasm)(const char *, size_t, byte_vec *) = need("wasmtime_wat2wasm");
    void *(*component_new)(void *, const uint8_t *, size_t, void **) = need("wasmtime_component_new");
    void *(*export_index)(void *, void *, const char *, size_t) = need("wasmtime_component_get_export_index");
    void *(*linker_new)(void *) = need("wasmtime_component_linker_new");
    void *(*instantiate)(void *, void *, void *, instance_t *) = need("wasmtime_component_linker_instantiate");
    bool (*get_func)(const instance_t *, void *, void *, func_t *) = need("wasmtime_component_instance_get_func");
    void *(*call)(const func_t *, void *, const val *, size_t, val *, size_t) = need("wasmtime_component_func_call");
    void *(*post_return)(const func_t *, void *) = need("wasmtime_component_func_post_return");
    void (*val_delete)(val *) = need("wasmtime_component_val_delete");
    void *(*store_new)(void *, void *, void (*)(void *)) = need("wasmtime_store_new");
    void *(*store_context)(void *) = need("wasmtime_store_context");
    void (*store_delete)(void *) = need("wasmtime_store_delete");

    void *config = config_new();
    void *pool = pool_new();
    for (int k = 0; k < 5; k++) ((void (*)(void *, uint32_t))need(knobs[k]))(pool, 20);
    strategy_set(config, pool);
    pool_delete(pool);
    void *engine = engine_new(config);
    byte_vec wasm = {0, NULL};
    void *component = NULL;
    if (wat2wasm(wat, wat_len, &wasm) || component_new(engine, (const uint8_t *)wasm.data, wasm.size, &component)) {
        fprintf(stderr, "the middleware component does not compile\n");
        return 1;
    }
    void *index = export_index(component, NULL, "on-request", 10);
    void *linker = linker_new(engine);
    if (!index || !linker) { fprintf(stderr, "no export on-request, or no linker\n"); return 1; }
    val request = auth_ok_request();

    int64_t *samples = malloc(sizeof(int64_t) * (size_t)(requests > warmup ? requests : warmup));
    printf("{\"requests\": %d, \"repeats\": %d, \"warmup\": %d, \"per_repetition\": [", requests, repeats, warmup);
    for (int rep = -1; rep < repeats; rep++) {
        int n = rep < 0 ? warmup : requests;
        for (int i = 0; i < n; i++) {
            int64_t t0 = now_ns();
            void *store = store_new(engine, NULL, NULL);
            void *context = store_context(store);
            instance_t instance;
            func_t func;
            val result;
            memset(&result, 0, sizeof result);
            if (instantiate(linker, context, component, &instance)) { fprintf(stderr, "instantiation failed\n"); return 1; }
            if (!get_func(&instance, context, index, &func)) { fprintf(stderr, "on-request is not a function\n"); return 1; }
            if (call(&func, context, &request, 1, &result, 1) || post_return(&func, context)) { fprintf(stderr, "call failed\n"); return 1; }
            store_delete(store);
            int ok = result.kind == VARIANT && result.of.variant.discriminant.size == 6 &&
                     memcmp(result.of.variant.discriminant.data, "modify", 6) == 0;
            val_delete(&result);
            if (!ok) { fprintf(stderr, "on-request did not answer modify\n"); return 1; }
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
