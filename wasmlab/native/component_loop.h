/*
 * A component request in C (issue 25): per request the compiled component (compiled per request, or from the driver's
 * component cache keyed by SHA-256 and the calls' exports, with each call's export index looked up once per compiled
 * component), a fresh store, a fresh instance through the driver's component linker, then each of the request's calls
 * in order in that instance (a recipe's invoke steps; the entry's last), each with its argument trees built once, each
 * result compared with its expectation (component_values.c) on every request, post_return, the results freed, the
 * store deleted.  With instance reuse an instance and its store serve `reuse` requests in a row (component_serve_reused).
 * No Python here: component_inputs.c builds the trees from the boundary's structures.
 */
#ifndef WASMLAB_COMPONENT_LOOP_H
#define WASMLAB_COMPONENT_LOOP_H

#include "component_api.h"
#include "component_values.h"
#include "driver.h"

/* One call of a request: its export, its argument trees and its check.  Trees built here (arguments, a given
 * expectation) are malloc'd and freed by cvalue_free; a learned expectation is wasmtime's (a first result) and freed by
 * wasmtime_component_val_delete. */
typedef struct ComponentStep {
    char *entry;
    size_t entry_len;
    wasmtime_component_val_t *args;
    size_t nargs;
    int returns;
    int check;                        /* CHECK_NONE, CHECK_EXPECTED or CHECK_FIRST */
    int learned;                      /* expected holds a first result (wasmtime's memory) */
    wasmtime_component_val_t expected;
} ComponentStep;

/* One compiled component in the driver's cache, with the export index of each of its workload's calls. */
typedef struct ComponentEntry {
    uint8_t sha256[32];
    const ComponentCall *calls;       /* whose exports the indices are (the key compares their names) */
    wasmtime_component_t *component;
    wasmtime_component_export_index_t **indices;
    uint64_t last_used;               /* the cache's tick at its last hit or insertion (least recently used evicted) */
} ComponentEntry;

/* Instance reuse (Driver.reuse > 1): the store a component workload's requests run in until `served` reaches the
 * driver's reuse, each call's function looked up once in its instance (ComponentCall.funcs), and the compiled component
 * it came from, owned (freed with it) only when `temporary` (no cache). */
typedef struct KeptComponent {
    wasmtime_store_t *store;
    ComponentEntry entry;
    int temporary;
    int served;
} KeptComponent;

/* What one component workload calls and checks: its calls in order (the last is the entry), with room for one
 * request's functions and results (allocated once, so a request allocates nothing), and the last result that did not
 * match, kept (wasmtime's) with the call and the request it came from so that Python can name them. */
typedef struct ComponentCall {
    const ComponentApi *capi;
    int wasi;                         /* a WASI p2 context on each store (the component imports wasi:*) */
    int command;                      /* a component command: the workload's WasiSpec is its context (component_command.h) */
    int wasi_http;                    /* a wasi-http context on each store too, after its WASI one (a wasi:http proxy) */
    int instantiate_only;             /* each request instantiates and looks the calls' functions up, and calls none */
    size_t ncalls;
    ComponentStep *calls;
    wasmtime_component_func_t *funcs; /* per request: each call's function in this request's store */
    wasmtime_component_val_t *results;/* per request: each call's result slot, zeroed before the calls */
    uint64_t requests;                /* requests served so far (the current one's number, from 1) */
    int has_differing;
    size_t differing_call;
    uint64_t differing_request;
    wasmtime_component_val_t differing;
    KeptComponent kept;               /* instance reuse: the live instance, store NULL when none */
    int has_reference;                /* instance reuse: the first fresh instance's results (wasmtime's clones), what */
    wasmtime_component_val_t *reference; /* a reused request's are compared with (ncalls slots) */
} ComponentCall;

/* A workload's calls with `ncalls` zeroed steps and room for a request's functions and results: NULL out of memory. */
ComponentCall *component_call_new(const ComponentApi *capi, size_t ncalls);

/* What a component workload holds, freed (NULL: nothing). */
void component_call_free(ComponentCall *c);

/* The driver's component linker (made on first use; WASI p2 added to it once when `wasi`, then wasi:http once when
 * `wasi_http`): 0, or -1 (no linker, or an import set could not be added: the message kept as the driver's first). */
int component_driver_ready(Driver *d, const ComponentApi *capi, int wasi, int wasi_http);

/* Every cached component and the component linker freed. */
void component_driver_clear(Driver *d);

/* One whole component request, as serve() does a core one: its outcome (OUT_*), *detail written.  In a phased block
 * (d->steps) a stamp before the first call and after each. */
int component_serve(Driver *d, Workload *w, int64_t *stamps, int64_t *detail);

/* One component request on the workload's kept instance (instance reuse, as request_loop.c's serve_reused for a core
 * module): *memory_bytes -1, *fresh 1 when it made the instance, *carried 1 when a reused request's results differ from the fresh
 * reference (or it failed where the fresh one did not), counted, not failed.  A component command's end is judged as
 * component_serve judges it; its kept WASI context's outputs (what stdout and stderr gained since the request before) are
 * compared with the fresh reference's by the block loop, which sets *carried too when they differ.  The outcome. */
int component_serve_reused(Driver *d, Workload *w, int64_t *detail, int64_t *memory_bytes, int64_t *fresh, int64_t *carried);

/* The workload's kept component instance dropped (its store deleted; its component freed when uncached); none: nothing. */
void component_drop_kept(Driver *d, Workload *w);

#endif
