/*
 * The steps of one core request that the fresh-instance loop (request_loop.c) and the instance-reuse loop
 * (reuse_loop.c) share.  Defined inline in request_loop.c, so the fresh request's hot path is still one translation unit
 * as the compiler sees it; these declarations make the definitions external for reuse_loop.c.
 */
#ifndef WASMLAB_REQUEST_STEPS_H
#define WASMLAB_REQUEST_STEPS_H

#include "driver.h"

/* The compiled module (and InstancePre): a cache hit, or compiled (and cached).  0, or -1 when it does not compile. */
int module_of(Driver *d, const Workload *w, wasmtime_module_t **module, wasmtime_instance_pre_t **pre);

/* Instantiate on a ready store (the `wait` policy's retries included): OUT_OK, or OUT_ERROR / OUT_TRAP with its detail. */
int instantiate_in_store(Driver *d, const Workload *w, wasmtime_context_t *context, wasmtime_module_t *module,
                         wasmtime_instance_pre_t *pre, wasmtime_instance_t *instance, int64_t *detail);

/* The export called with the workload's arguments: OUT_OK with its result in *detail, or how it failed (stamps 4 and 5
 * written when given). */
int call_entry(Driver *d, const Workload *w, wasmtime_context_t *context, wasmtime_instance_t *instance, int64_t *stamps,
               int64_t *detail, int64_t *memory_bytes);

/* The result against the expected value, or learned from the first request.  An expected value when the call (a recipe's
 * last call step) returns nothing is a mismatch on every request, as on the Python paths (result None). */
int judge_result(Driver *d, Workload *w, int outcome, int64_t detail);

#endif
