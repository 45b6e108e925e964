/*
 * What the request loop and its helpers share: a Workload (one thing a driver serves), a Driver (the engine, linker,
 * module cache, limits, workloads and the block's first failure) and a Block of requests.  Types only, so the recipe
 * programs, the component loop and the request loop each include it without including one another.
 */
#ifndef WASMLAB_DRIVER_H
#define WASMLAB_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "module_cache.h"
#include "outcomes.h"
#include "wasi.h"
#include "wasmtime_api.h"

typedef struct Program Program;
typedef struct ComponentCall ComponentCall;
typedef struct ComponentEntry ComponentEntry;

/* Instance reuse (Driver.reuse > 1): the store and instance a workload's requests run in until `served` reaches the
 * driver's reuse, with the module (and InstancePre) they came from. */
typedef struct {
    wasmtime_store_t *store;
    wasmtime_instance_t instance;
    wasmtime_module_t *module;
    wasmtime_instance_pre_t *pre;
    int served;
} KeptInstance;

/* One thing a driver serves: a core module's export called with fixed arguments, or a recipe's program. */
typedef struct {
    uint8_t *wasm;
    size_t wasm_len;
    uint8_t sha256[32];
    char *entry;
    size_t entry_len;
    size_t nslots;         /* the raw value slots of the call: max(arguments, 1) */
    int nargs;
    int64_t args[MAX_SLOTS];
    uint8_t arg_kinds[MAX_SLOTS];
    uint8_t result_kind;
    int check;
    int learned;
    int64_t expected;
    Program *program;      /* a recipe's steps instead of one call of `entry`, or NULL */
    int linked;            /* instantiated through the driver's linker (WASI, host functions) */
    WasiSpec *wasi;        /* a WASI context per request, or NULL */
    ComponentCall *component; /* a component's call instead (component_loop.h), or NULL */
    KeptInstance kept;     /* instance reuse: the live instance, store NULL when none */
    int has_reference;     /* instance reuse: the first fresh instance's result, what reused requests are compared with */
    int64_t reference;
} Workload;

typedef struct {
    const Api *api;
    wasm_engine_t *engine;
    wasmtime_linker_t *linker;
    int own_linker;
    int pre;
    ModuleCache cache;
    /* Per-store limits: fuel < 0 and epoch_ticks == 0 mean none; a limiter when `limited`. */
    int64_t fuel;
    uint64_t epoch_ticks;
    int limited;
    int64_t limiter[5];
    /* How many requests in a row one instance serves (1: a fresh instance per request, the lab's default). */
    int reuse;
    /* Pool exhaustion: fail (wait_ns < 0) or retry for at most wait_ns. */
    int64_t wait_ns;
    Workload *workloads;
    int nworkloads;
    /* Counters since they were last taken (the cache keeps its own); check_ns and checks: the lab's output checks of WASI
     * requests, made outside the requests' recorded time. */
    uint64_t compile_ns, waits, wait_total_ns, check_ns, checks;
    char first_message[MESSAGE_BYTES];
    int has_message;
    /* The current request's step stamps (STEP_STAMPS words) in a phased block that asked for them, else NULL. */
    int64_t *steps;
    /* Components (component_loop.h): the functions, the linker (made with the first component workload) and the
     * compiled components with their export indices, cached when the driver caches. */
    const void *component_api;
    void *component_linker;
    int component_wasip2;  /* WASI p2 added to the component linker */
    int component_wasi_http; /* wasi:http added to it too (a proxy's instantiate-only request) */
    uint64_t instances;    /* component instances made since the counters were last taken (Driver.take_stats) */
    int component_stubs;   /* a recipe's stubs of component imports defined on it (component_stubs.h) */
    ComponentEntry *components;
    int ncomponents;
} Driver;

/* A block of requests: `n` workload indices (each checked by the caller), RECORD_WORDS int64 per request written (ns,
 * outcome, detail, memory bytes, the open-loop generator's lateness, fresh instance, carried over); optional: STAMPS per request, each request's due
 * time in ns after the block's start (open-loop load), STEP_STAMPS per request for a recipe's steps. */
typedef struct {
    const int32_t *which;
    size_t n;
    int64_t *records;
    int64_t *stamps;
    const int64_t *due;
    int64_t *steps;
} Block;

#endif
