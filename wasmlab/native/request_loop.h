/*
 * The request loop: a Driver serves blocks of requests.  Each request does the whole job, like the lab's Python call
 * paths: get the compiled module (compiled per request without a cache, or looked up in the module cache keyed by its
 * SHA-256), a new store with the per-store limits, instantiate (from an InstancePre when asked), look the export up, call
 * it, check its result, delete the store.  Each request's nanoseconds (CLOCK_MONOTONIC, the clock of Python's
 * perf_counter_ns) and outcome go to a buffer the caller owns; in phased mode the same loop also writes a stamp at each
 * phase boundary.  No Python here: the glue (driver_type.c) fills a Driver, tests/native/core_main.c does it from C.
 */
#ifndef WASMLAB_REQUEST_LOOP_H
#define WASMLAB_REQUEST_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "module_cache.h"
#include "outcomes.h"
#include "wasi.h"
#include "wasmtime_api.h"

typedef struct Program Program;
typedef struct ComponentCall ComponentCall;
typedef struct ComponentEntry ComponentEntry;

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
    /* Pool exhaustion: fail (wait_ns < 0) or retry for at most wait_ns. */
    int64_t wait_ns;
    Workload *workloads;
    int nworkloads;
    /* Counters since they were last taken (the cache keeps its own). */
    uint64_t compile_ns, waits, wait_total_ns;
    char first_message[MESSAGE_BYTES];
    int has_message;
    /* The current request's step stamps (STEP_STAMPS words) in a phased block that asked for them, else NULL. */
    int64_t *steps;
    /* Components (component_loop.h): the functions, the linker (made with the first component workload) and the
     * compiled components with their export indices, cached when the driver caches. */
    const void *component_api;
    void *component_linker;
    int component_wasip2;  /* WASI p2 added to the component linker */
    ComponentEntry *components;
    int ncomponents;
} Driver;

/* A block of requests: `n` workload indices (each checked by the caller), RECORD_WORDS int64 per request written (ns,
 * outcome, detail, memory bytes, the open-loop generator's lateness); optional: STAMPS per request, each request's due
 * time in ns after the block's start (open-loop load), STEP_STAMPS per request for a recipe's steps. */
typedef struct {
    const int32_t *which;
    size_t n;
    int64_t *records;
    int64_t *stamps;
    const int64_t *due;
    int64_t *steps;
} Block;

/* A driver on `engine` with a cache of `capacity` (0: none); `linker` borrowed, or NULL (one of its own is made when
 * `pre`).  No limits and fail on exhaustion until the caller sets them.  0, or -1 out of memory. */
int driver_init(Driver *d, const Api *api, wasm_engine_t *engine, int capacity, int pre, wasmtime_linker_t *linker);

/* Every cached module, workload and own linker freed (the driver can take workloads again). */
void driver_clear(Driver *d);

/* `w` (its buffers now the driver's) appended: its index, or -1 out of memory (nothing taken). */
int driver_add(Driver *d, const Workload *w);

/* What a workload holds, freed. */
void workload_free(Workload *w);

/* The block served; its wall ns.  A block stops at the first request whose outcome means the variant cannot go on (a
 * result that does not match, a missing export, a module that does not compile): the rest get outcome -1.  The first
 * failure's message: first_message when has_message. */
int64_t driver_serve_block(Driver *d, const Block *block);

/* A new store's limits, fuel, epoch deadline and WASI context, as every request gets them (shared with components):
 * OUT_OK or OUT_ERROR. */
int driver_store_ready(Driver *d, const Workload *w, wasmtime_store_t *store, wasmtime_context_t *context, int64_t *detail);

/* The failure paths, shared with the recipe programs: a message kept if it is the block's first. */
void driver_remember_text(Driver *d, const char *text);
/* Keeps the error's message (if first), deletes the error, and returns its kind (ERROR_*). */
int driver_drop_error(Driver *d, wasmtime_error_t *err, const char *prefix);
/* Keeps the trap's message (if first), its code into *code (-1 none), and deletes it. */
void driver_drop_trap(Driver *d, wasm_trap_t *trap, int64_t *code);

#endif
