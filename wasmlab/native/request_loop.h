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

#include "driver.h"

/* A driver on `engine` with a cache of `capacity` (0: none); `linker` borrowed, or NULL (one of its own is made when
 * `pre`).  No limits and fail on exhaustion until the caller sets them.  0, or -1 out of memory. */
int driver_init(Driver *d, const Api *api, wasm_engine_t *engine, int capacity, int pre, wasmtime_linker_t *linker);

/* Every cached module, workload and own linker freed (the driver can take workloads again). */
void driver_clear(Driver *d);

/* Every workload's kept instance (instance reuse) dropped. */
void driver_drop_kept(Driver *d);

/* `w` (its buffers now the driver's) appended: its index, or -1 out of memory (nothing taken). */
int driver_add(Driver *d, const Workload *w);

/* What a workload holds, freed. */
void workload_free(Workload *w);

/* A WASI request's end (core or component command): an exit with the expected status is its normal end, ending without
 * one when one is expected is a mismatch.  The outcome.  Its outputs are checked by the block loop, outside the
 * request's recorded time. */
int judge_exit(Driver *d, const WasiSpec *wasi, int outcome, int64_t *detail);

/* The block served; its wall ns, less the lab's output checks (each request's stdout, stderr and written files against
 * the first request's, made after the request's recorded time has ended and counted in d->check_ns and d->checks).  A block stops at the first request whose outcome means the variant cannot go on (a
 * result that does not match, a missing export, a module that does not compile): the rest get outcome -1.  The first
 * failure's message: first_message when has_message. */
int64_t driver_serve_block(Driver *d, const Block *block);

#endif
