/* Instance reuse: see reuse_loop.h.
 *
 * The isolation price is measured, not refused.  A request on a fresh instance is checked as serve() checks every
 * request (its result, a recipe's reads, a command's exit; its outputs by the block loop), and becomes the workload's
 * fresh reference.  A reused request is compared with that reference: its result, every read of a recipe (each against
 * the first fresh request's bytes, program_run's `differed`), and, for a WASI command, the bytes its stdout and stderr
 * gained and the files it left (the block loop's check_outputs, after the request's recorded time: a kept WASI context
 * keeps its stdio files open and its writable directories, so a reused request's output is what the files gained since
 * the request before it).  A difference, or a failure where the fresh instance succeeded, is state carried over,
 * counted in *carried, not a failure. */
#include "reuse_loop.h"

#include <string.h>

#include "component_loop.h"
#include "program.h"
#include "request_loop.h"
#include "request_steps.h"
#include "store_setup.h"

/* The workload's kept instance dropped (its store deleted, its module released when nothing caches it). */
static void drop_kept(Driver *d, Workload *w) {
    KeptInstance *k = &w->kept;
    if (k->store != NULL)
        d->api->wasmtime_store_delete(k->store);
    if (k->module != NULL && d->cache.capacity == 0)
        release_module(d->api, k->module, k->pre);
    memset(k, 0, sizeof *k);
}

void driver_drop_kept(Driver *d) {
    for (int i = 0; i < d->nworkloads; i++) {
        drop_kept(d, &d->workloads[i]);
        component_drop_kept(d, &d->workloads[i]);
    }
}

/* A fresh instance kept for the workload's next requests: its module, a new store made ready (limits; a WASI context
 * whose stdio files start empty and whose writable directories are made fresh), instantiated (the `wait` policy's
 * retries included).  OUT_OK, or how it failed (nothing kept then). */
static int keep_fresh_instance(Driver *d, Workload *w, int64_t *detail) {
    KeptInstance *k = &w->kept;
    if (module_of(d, w, &k->module, &k->pre) < 0) {
        memset(k, 0, sizeof *k);
        return OUT_COMPILE_ERROR;
    }
    k->store = d->api->wasmtime_store_new(d->engine, NULL, NULL);
    wasmtime_context_t *context = d->api->wasmtime_store_context(k->store);
    int outcome = store_ready(d, w, k->store, context, detail);
    if (outcome == OUT_OK)
        outcome = instantiate_in_store(d, w, context, k->module, k->pre, &k->instance, detail);
    if (outcome != OUT_OK)
        drop_kept(d, w);
    return outcome;
}

/* The instance is dropped in the request that is its `reuse`-th, or after any request that did not end ok (a trap may
 * leave it half-updated).  A command's expected exit is its normal end, and its instance serves on. */
int serve_reused(Driver *d, Workload *w, int64_t *detail, int64_t *memory_bytes, int64_t *fresh, int64_t *carried) {
    *detail = 0;
    *memory_bytes = -1;
    *carried = 0;
    *fresh = w->kept.store == NULL;
    if (*fresh) {
        int made = keep_fresh_instance(d, w, detail);
        if (made != OUT_OK)
            return made;
    }
    wasmtime_context_t *context = d->api->wasmtime_store_context(w->kept.store);
    int differed = 0; /* a reused request's read that differs from the fresh reference's */
    int outcome = w->program == NULL
        ? call_entry(d, w, context, &w->kept.instance, NULL, detail, memory_bytes)
        : program_run(d, w->program, context, &w->kept.instance, detail, memory_bytes, *fresh ? NULL : &differed);
    if (w->wasi != NULL)
        outcome = judge_exit(d, w->wasi, outcome, detail);
    if (++w->kept.served >= d->reuse || outcome != OUT_OK)
        drop_kept(d, w);
    if (*fresh) {
        outcome = judge_result(d, w, outcome, *detail);
        if (outcome == OUT_OK && !w->has_reference) {
            w->reference = *detail;
            w->has_reference = 1;
        }
        return outcome;
    }
    /* A call that returns nothing (a command's _start, a recipe whose last call returns nothing) has no result to compare. */
    int result_differs = w->result_kind != KIND_NONE && *detail != w->reference;
    *carried = w->has_reference && (outcome != OUT_OK || differed || result_differs);
    return outcome;
}
