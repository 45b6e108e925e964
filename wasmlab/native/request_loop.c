/* The request loop: see request_loop.h.  serve() and its steps are in this one file (and cache_find inline) so the
 * compiler sees the whole per-request path, as it did when the driver was one file. */
#include "request_loop.h"
#include "component_loop.h"
#include "request_steps.h"
#include "reuse_loop.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "failures.h"
#include "program.h"
#include "store_setup.h"

int driver_init(Driver *d, const Api *api, wasm_engine_t *engine, int capacity, int pre, wasmtime_linker_t *linker) {
    memset(d, 0, sizeof *d);
    d->api = api;
    d->engine = engine;
    d->pre = pre;
    d->reuse = 1;
    d->fuel = -1;
    d->wait_ns = -1;
    if (linker != NULL) {
        /* The lab's core linker (WASI and host functions defined): borrowed, alive as long as the runtime. */
        d->linker = linker;
    } else if (pre) {
        d->linker = api->wasmtime_linker_new(engine);
        d->own_linker = 1;
    }
    return cache_init(&d->cache, capacity);
}

void workload_free(Workload *w) {
    free(w->wasm);
    free(w->entry);
    program_free(w->program);
    wasi_free(w->wasi);
    component_call_free(w->component);
    memset(w, 0, sizeof *w);
}

void driver_clear(Driver *d) {
    driver_drop_kept(d); /* before the modules the kept instances came from */
    cache_clear(&d->cache, d->api);
    component_driver_clear(d);
    if (d->own_linker && d->linker != NULL && d->api != NULL)
        d->api->wasmtime_linker_delete(d->linker);
    d->linker = NULL;
    for (int i = 0; i < d->nworkloads; i++)
        workload_free(&d->workloads[i]);
    free(d->workloads);
    d->workloads = NULL;
    d->nworkloads = 0;
}

int driver_add(Driver *d, const Workload *w) {
    Workload *grown = realloc(d->workloads, sizeof(Workload) * (size_t)(d->nworkloads + 1));
    if (grown == NULL)
        return -1;
    d->workloads = grown;
    d->workloads[d->nworkloads] = *w;
    return d->nworkloads++;
}

/* ---- One request, step by step ---- */

static int compile(Driver *d, const Workload *w, wasmtime_module_t **module, wasmtime_instance_pre_t **pre) {
    const Api *api = d->api;
    int64_t start = now_ns();
    *pre = NULL;
    wasmtime_error_t *err = api->wasmtime_module_new(d->engine, w->wasm, w->wasm_len, module);
    if (err == NULL && d->pre) {
        err = api->wasmtime_linker_instantiate_pre(d->linker, *module, pre);
        if (err != NULL) {
            api->wasmtime_module_delete(*module);
            *module = NULL;
        }
    }
    d->compile_ns += (uint64_t)(now_ns() - start);
    if (err != NULL) {
        (void)driver_drop_error(d, err, "CompileError: ");
        return -1;
    }
    return 0;
}

/* See request_steps.h. */
inline int module_of(Driver *d, const Workload *w, wasmtime_module_t **module, wasmtime_instance_pre_t **pre) {
    if (d->cache.capacity > 0) {
        Entry *e = cache_find(&d->cache, w->sha256);
        if (e != NULL) {
            d->cache.hits++;
            e->last_used = ++d->cache.tick;
            *module = e->module;
            *pre = e->pre;
            return 0;
        }
    }
    d->cache.misses++;
    if (compile(d, w, module, pre) < 0)
        return -1;
    if (d->cache.capacity > 0)
        cache_insert(&d->cache, d->api, w->sha256, *module, *pre);
    return 0;
}

static inline wasmtime_error_t *instantiate(Driver *d, const Workload *w, wasmtime_context_t *context, wasmtime_module_t *module,
                                            wasmtime_instance_pre_t *pre, wasmtime_instance_t *instance, wasm_trap_t **trap) {
    const Api *api = d->api;
    if (pre != NULL)
        return api->wasmtime_instance_pre_instantiate(pre, context, instance, trap);
    if (w->linked)
        return api->wasmtime_linker_instantiate(d->linker, context, module, instance, trap);
    return api->wasmtime_instance_new(context, module, NULL, 0, instance, trap);
}

/* The `wait` policy: a pool with no free slot is tried again until one frees or the budget is spent.  The last error. */
static wasmtime_error_t *wait_for_a_slot(Driver *d, const Workload *w, wasmtime_context_t *context, wasmtime_module_t *module,
                                         wasmtime_instance_pre_t *pre, wasmtime_instance_t *instance, wasm_trap_t **trap,
                                         wasmtime_error_t *err) {
    int64_t began = now_ns();
    int waited = 0;
    while (driver_slot_retry(d, &err, began, &waited))
        err = instantiate(d, w, context, module, pre, instance, trap);
    d->wait_total_ns += (uint64_t)(now_ns() - began);
    return err;
}

/* See request_steps.h. */
inline int call_entry(Driver *d, const Workload *w, wasmtime_context_t *context, wasmtime_instance_t *instance,
                             int64_t *stamps, int64_t *detail, int64_t *memory_bytes) {
    const Api *api = d->api;
    wasmtime_extern_t item;
    if (!api->wasmtime_instance_export_get(context, instance, w->entry, w->entry_len, &item) || item.kind != WASMTIME_EXTERN_FUNC)
        return OUT_NO_EXPORT;
    if (stamps) stamps[4] = now_ns();
    wasmtime_val_raw_t values[MAX_SLOTS];
    for (int i = 0; i < w->nargs; i++) {
        if (w->arg_kinds[i] == KIND_I64) values[i].i64 = w->args[i];
        else { values[i].i64 = 0; values[i].i32 = (int32_t)w->args[i]; }
    }
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *err = api->wasmtime_func_call_unchecked(context, &item.of.func, values, w->nslots, &trap);
    int outcome = OUT_OK;
    if (err != NULL) {
        int status = 0;
        if (api->wasmtime_error_exit_status(err, &status)) {
            *detail = status;
            outcome = OUT_EXIT;
            api->wasmtime_error_delete(err);
        } else {
            *detail = driver_drop_error(d, err, "WasmtimeError: ");
            outcome = OUT_ERROR;
        }
    } else if (trap != NULL) {
        driver_drop_trap(d, trap, detail);
        outcome = OUT_TRAP;
        /* Its memory size tells a guest whose memory.grow failed (oom) from any other trap. */
        wasmtime_extern_t memory;
        if (api->wasmtime_instance_export_get(context, instance, "memory", 6, &memory) && memory.kind == WASMTIME_EXTERN_MEMORY)
            *memory_bytes = (int64_t)api->wasmtime_memory_data_size(context, &memory.of.memory);
    } else if (w->result_kind == KIND_I64) {
        *detail = values[0].i64;
    } else if (w->result_kind == KIND_I32) {
        *detail = values[0].i32;
    }
    if (stamps) stamps[5] = now_ns();
    return outcome;
}

/* See request_steps.h. */
inline int instantiate_in_store(Driver *d, const Workload *w, wasmtime_context_t *context, wasmtime_module_t *module,
                                       wasmtime_instance_pre_t *pre, wasmtime_instance_t *instance, int64_t *detail) {
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *err = instantiate(d, w, context, module, pre, instance, &trap);
    if (err != NULL && d->wait_ns >= 0)
        err = wait_for_a_slot(d, w, context, module, pre, instance, &trap, err);
    if (err != NULL) {
        *detail = driver_drop_error(d, err, "WasmtimeError: ");
        return OUT_ERROR;
    }
    if (trap != NULL) {
        driver_drop_trap(d, trap, detail);
        return OUT_TRAP;
    }
    return OUT_OK;
}

/* Instantiate and run the request on a ready store: its outcome (stamps 3 to 5 written as far as it got). */
static inline int run_in_store(Driver *d, const Workload *w, wasmtime_context_t *context, wasmtime_module_t *module,
                               wasmtime_instance_pre_t *pre, int64_t *stamps, int64_t *detail, int64_t *memory_bytes) {
    wasmtime_instance_t instance;
    int made = instantiate_in_store(d, w, context, module, pre, &instance, detail);
    if (made != OUT_OK)
        return made;
    if (stamps) stamps[3] = now_ns();
    if (w->program == NULL)
        return call_entry(d, w, context, &instance, stamps, detail, memory_bytes);
    /* A recipe: its steps look up what they call, so the export-lookup phase is empty and the call phase is theirs. */
    if (stamps) stamps[4] = now_ns();
    int outcome = program_run(d, w->program, context, &instance, detail, memory_bytes, NULL);
    if (stamps) stamps[5] = now_ns();
    return outcome;
}

/* See request_loop.h (a component command's end is judged here too). */
int judge_exit(Driver *d, const WasiSpec *wasi, int outcome, int64_t *detail) {
    if (outcome == OUT_EXIT && *detail == wasi->expected_exit) {
        outcome = OUT_OK;
        *detail = 0;
    } else if (outcome == OUT_OK && wasi->expected_exit != 0) {
        char message[96];
        snprintf(message, sizeof message, "returned without exiting, expected exit %d", wasi->expected_exit);
        driver_remember_text(d, message);
        outcome = OUT_MISMATCH;
    }
    return outcome;
}

/* The lab's check of a WASI request's outputs against the first request's, after its recorded time has ended: reading
 * them back and comparing them is the lab's work, not the host's (the guest's writes, in its call, are timed).  Its own
 * ns and count go to the driver's counters (take_stats), so the check's cost is reported beside the latency.  `carried`:
 * a reused request's (instance reuse), whose outputs are compared with its fresh instance's and set it when they differ. */
static int check_outputs(Driver *d, WasiSpec *wasi, int outcome, int64_t *carried) {
    if (outcome != OUT_OK || wasi == NULL || !wasi->compare_output)
        return outcome;
    int64_t start = now_ns();
    char message[2 * PATH_MAX + 96];
    int differed = 0; /* a reused request's outputs: a difference from the fresh reference is carried-over state */
    outcome = wasi_compare_output(wasi, carried != NULL ? &differed : NULL, message, sizeof message);
    if (differed)
        *carried = 1;
    if (outcome != OUT_OK)
        driver_remember_text(d, message);
    d->check_ns += (uint64_t)(now_ns() - start);
    d->checks++;
    return outcome;
}

/* See request_steps.h. */
inline int judge_result(Driver *d, Workload *w, int outcome, int64_t detail) {
    if (outcome != OUT_OK || w->check == CHECK_NONE)
        return outcome;
    if (w->result_kind == KIND_NONE) {
        if (w->check != CHECK_EXPECTED)
            return outcome;
        char message[96];
        snprintf(message, sizeof message, "result None (the last call returns nothing), expected %lld", (long long)w->expected);
        driver_remember_text(d, message);
        return OUT_MISMATCH;
    }
    if (w->check == CHECK_FIRST && !w->learned) {
        w->expected = detail;
        w->learned = 1;
        return outcome;
    }
    return detail != w->expected ? OUT_MISMATCH : outcome;
}

/* One whole request; returns its outcome and writes its detail and, after a trap, the guest's memory size. */
static int serve(Driver *d, Workload *w, int64_t *stamps, int64_t *detail, int64_t *memory_bytes) {
    const Api *api = d->api;
    if (w->component != NULL) {
        *memory_bytes = -1;
        return component_serve(d, w, stamps, detail);
    }
    wasmtime_module_t *module = NULL;
    wasmtime_instance_pre_t *pre = NULL;
    *detail = 0;
    *memory_bytes = -1;
    if (module_of(d, w, &module, &pre) < 0)
        return OUT_COMPILE_ERROR;
    if (stamps) stamps[1] = now_ns();
    wasmtime_store_t *store = api->wasmtime_store_new(d->engine, NULL, NULL);
    wasmtime_context_t *context = api->wasmtime_store_context(store);
    int outcome = store_ready(d, w, store, context, detail);
    if (outcome == OUT_OK) {
        if (stamps) stamps[2] = now_ns();
        outcome = run_in_store(d, w, context, module, pre, stamps, detail, memory_bytes);
    }
    api->wasmtime_store_delete(store);
    if (d->cache.capacity == 0)
        release_module(api, module, pre);
    if (w->wasi != NULL)
        outcome = judge_exit(d, w->wasi, outcome, detail);
    if (stamps) {
        stamps[6] = now_ns();
        for (int k = 2; k < 6; k++) /* phases a failed request did not reach end where it ended */
            if (stamps[k] == 0) stamps[k] = stamps[6];
    }
    outcome = judge_result(d, w, outcome, *detail);
    if (stamps) stamps[7] = now_ns();
    return outcome;
}

/* Open loop: request i is due at block start + due; its latency counts from then, so time spent queued behind a slow
 * request is part of it (no coordinated omission).  Sleep while more than 2 ms from due (a wake-up can be late by far
 * more than a request takes), spin after.  Returns the generator's own lateness: how long after it could have started
 * (due, or the previous request's end if that was later) the request did start.  Not queueing: the load generator's error. */
static int64_t wait_until_due(int64_t t0, int64_t previous_end, int first) {
    for (int64_t left = t0 - now_ns(); left > 0; left = t0 - now_ns()) {
        if (left > 2000000) {
            struct timespec pause = {0, (long)(left - 1000000)};
            nanosleep(&pause, NULL);
        }
    }
    int64_t ready = !first && previous_end > t0 ? previous_end : t0;
    return now_ns() - ready;
}

int64_t driver_serve_block(Driver *d, const Block *b) {
    d->has_message = 0;
    /* `checking`: the ns spent in the lab's output checks so far; they are left out of the block's wall time, and an
     * open-loop schedule is shifted by them (a request due during a check is not counted as queued behind it). */
    int64_t block_start = now_ns(), previous_end = block_start, checking = 0;
    for (size_t i = 0; i < b->n; i++) {
        int64_t *row = b->records + i * RECORD_WORDS;
        int64_t *phase = b->stamps ? b->stamps + i * STAMPS : NULL;
        if (phase) memset(phase, 0, sizeof(int64_t) * STAMPS);
        int64_t t0, lag = 0;
        if (b->due != NULL) {
            t0 = block_start + checking + b->due[i];
            lag = wait_until_due(t0, previous_end, i == 0);
        } else {
            t0 = now_ns();
        }
        if (phase) phase[0] = t0;
        d->steps = b->steps ? b->steps + i * STEP_STAMPS : NULL;
        if (d->steps) memset(d->steps, 0, sizeof(int64_t) * STEP_STAMPS);
        Workload *w = &d->workloads[b->which[i]];
        row[5] = 1;
        row[6] = 0;
        int outcome = d->reuse <= 1 ? serve(d, w, phase, &row[2], &row[3])
                      : w->component == NULL ? serve_reused(d, w, &row[2], &row[3], &row[5], &row[6])
                      : component_serve_reused(d, w, &row[2], &row[3], &row[5], &row[6]);
        previous_end = now_ns();
        row[0] = previous_end - t0;
        uint64_t checked_ns = d->check_ns;
        outcome = check_outputs(d, w->wasi, outcome, d->reuse > 1 && !row[5] ? &row[6] : NULL);
        if (d->check_ns != checked_ns) { /* a check ran: its time is the phased request's read_output, not the request's */
            checking += (int64_t)(d->check_ns - checked_ns);
            previous_end = now_ns(); /* the next request could start only now: no generator lateness for the check */
            if (phase) phase[7] = previous_end;
        }
        row[1] = outcome;
        row[4] = lag;
        if (outcome == OUT_MISMATCH || outcome == OUT_NO_EXPORT || outcome == OUT_COMPILE_ERROR) {
            for (size_t j = i + 1; j < b->n; j++) b->records[j * RECORD_WORDS + 1] = -1; /* not served */
            break;
        }
    }
    d->steps = NULL;
    int64_t wall = now_ns() - block_start - checking;
    /* No instance outlives its block: the next block's first request of each workload is a fresh instance, and no pool
     * slot is held while other variants run.  Dropping a partly used instance here is outside every request's time. */
    driver_drop_kept(d);
    return wall;
}
