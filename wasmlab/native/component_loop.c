/* A component request in C: see component_loop.h. */
#include "component_loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "component_command.h"
#include "failures.h"
#include "store_setup.h"

ComponentCall *component_call_new(const ComponentApi *capi, size_t ncalls) {
    ComponentCall *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->capi = capi;
    c->calls = calloc(ncalls ? ncalls : 1, sizeof *c->calls);
    c->funcs = calloc(ncalls ? ncalls : 1, sizeof *c->funcs);
    c->results = calloc(ncalls ? ncalls : 1, sizeof *c->results);
    c->reference = calloc(ncalls ? ncalls : 1, sizeof *c->reference);
    if (c->calls == NULL || c->funcs == NULL || c->results == NULL || c->reference == NULL) {
        component_call_free(c);
        return NULL;
    }
    c->ncalls = ncalls;
    return c;
}

static void step_free(const ComponentApi *capi, ComponentStep *s) {
    for (size_t i = 0; s->args != NULL && i < s->nargs; i++) cvalue_free(&s->args[i]);
    free(s->args);
    if (s->learned)
        capi->wasmtime_component_val_delete(&s->expected);
    else
        cvalue_free(&s->expected);
    free(s->entry);
}

void component_call_free(ComponentCall *c) {
    if (c == NULL)
        return;
    for (size_t k = 0; c->has_reference && k < c->ncalls; k++)
        if (c->calls[k].returns) c->capi->wasmtime_component_val_delete(&c->reference[k]);
    for (size_t k = 0; c->calls != NULL && k < c->ncalls; k++) step_free(c->capi, &c->calls[k]);
    if (c->has_differing)
        c->capi->wasmtime_component_val_delete(&c->differing);
    free(c->calls);
    free(c->funcs);
    free(c->results);
    free(c->reference);
    free(c);
}

/* The export index of `entry` in `component`, or NULL.  INTERFACE#FUNCTION (and OUTER#INNER#FUNCTION): each name is
 * found inside the interface before it, whose index is its parent; the top level has none. */
static wasmtime_component_export_index_t *export_index(const ComponentApi *capi, const wasmtime_component_t *component,
                                                       const char *entry, size_t entry_len) {
    const char *name = entry, *end = entry + entry_len;
    wasmtime_component_export_index_t *index = NULL;
    for (;;) {
        const char *hash = memchr(name, '#', (size_t)(end - name));
        size_t len = (size_t)((hash != NULL ? hash : end) - name);
        wasmtime_component_export_index_t *next = capi->wasmtime_component_get_export_index(component, index, name, len);
        if (index != NULL)
            capi->wasmtime_component_export_index_delete(index);
        index = next;
        if (index == NULL || hash == NULL)
            return index;
        name = hash + 1;
    }
}

/* A compiled component and its export indices freed. */
static void entry_free(const ComponentApi *capi, ComponentEntry *e) {
    for (size_t k = 0; e->indices != NULL && k < e->calls->ncalls; k++)
        if (e->indices[k] != NULL) capi->wasmtime_component_export_index_delete(e->indices[k]);
    free(e->indices);
    capi->wasmtime_component_delete(e->component);
    memset(e, 0, sizeof *e);
}

/* Compiled and each call's export index found: OUT_OK, OUT_COMPILE_ERROR or OUT_NO_EXPORT (message kept). */
static int compile_component(Driver *d, const Workload *w, ComponentEntry *out) {
    const ComponentApi *capi = d->component_api;
    const ComponentCall *c = w->component;
    memset(out, 0, sizeof *out);
    int64_t start = now_ns();
    wasmtime_error_t *err = capi->wasmtime_component_new(d->engine, w->wasm, w->wasm_len, &out->component);
    d->compile_ns += (uint64_t)(now_ns() - start);
    if (err != NULL) {
        (void)driver_drop_error(d, err, "CompileError: ");
        return OUT_COMPILE_ERROR;
    }
    out->calls = c;
    out->indices = calloc(c->ncalls ? c->ncalls : 1, sizeof *out->indices);
    for (size_t k = 0; out->indices != NULL && k < c->ncalls; k++) {
        const ComponentStep *s = &c->calls[k];
        out->indices[k] = export_index(capi, out->component, s->entry, s->entry_len);
        if (out->indices[k] == NULL) {
            char message[160];
            snprintf(message, sizeof message, "call %zu (%.100s): component export not found", k + 1, s->entry);
            driver_remember_text(d, message);
            entry_free(capi, out);
            return OUT_NO_EXPORT;
        }
    }
    if (out->indices == NULL) {
        entry_free(capi, out);
        driver_remember_text(d, "out of memory for the export indices");
        return OUT_ERROR;
    }
    memcpy(out->sha256, w->sha256, 32);
    return OUT_OK;
}

/* ---- The driver's linker and cache ---- */

int component_driver_ready(Driver *d, const ComponentApi *capi, int wasi, int wasi_http) {
    d->component_api = capi;
    if (d->component_linker == NULL)
        d->component_linker = capi->wasmtime_component_linker_new(d->engine);
    if (d->component_linker == NULL)
        return -1;
    if (wasi && !d->component_wasip2) {
        wasmtime_error_t *err = capi->wasmtime_component_linker_add_wasip2(d->component_linker);
        if (err != NULL) {
            (void)driver_drop_error(d, err, "wasmtime_component_linker_add_wasip2: ");
            return -1;
        }
        d->component_wasip2 = 1;
    }
    if (wasi_http && !d->component_wasi_http) { /* after WASI p2, whose types wasi:http's imports use */
        wasmtime_error_t *err = capi->wasmtime_component_linker_add_wasi_http(d->component_linker);
        if (err != NULL) {
            (void)driver_drop_error(d, err, "wasmtime_component_linker_add_wasi_http: ");
            return -1;
        }
        d->component_wasi_http = 1;
    }
    return 0;
}

void component_driver_clear(Driver *d) {
    const ComponentApi *capi = d->component_api;
    if (capi == NULL)
        return;
    for (int i = 0; i < d->ncomponents; i++)
        entry_free(capi, &d->components[i]);
    free(d->components);
    d->components = NULL;
    d->ncomponents = 0;
    if (d->component_linker != NULL)
        capi->wasmtime_component_linker_delete(d->component_linker);
    d->component_linker = NULL;
    d->component_wasip2 = d->component_wasi_http = 0;
    d->component_stubs = 0; /* their constants went with the linker (its functions' finalizers) */
}

/* Whether two workloads call the same exports in the same order (a cached component's indices serve both). */
static int same_exports(const ComponentCall *a, const ComponentCall *b) {
    if (a == b)
        return 1;
    if (a->ncalls != b->ncalls)
        return 0;
    for (size_t k = 0; k < a->ncalls; k++)
        if (a->calls[k].entry_len != b->calls[k].entry_len ||
            memcmp(a->calls[k].entry, b->calls[k].entry, a->calls[k].entry_len) != 0) return 0;
    return 1;
}

/* The compiled component: a cache hit (same bytes, same exports) or compiled and cached when the driver caches, the
 * least recently used entry evicted when the cache is full (the lab's policy, lru, as module_cache.c keeps core modules;
 * a linear scan: a cache holds tens of components).  *temporary: uncached (or out of memory), this request frees it. */
static int component_of(Driver *d, const Workload *w, ComponentEntry *out, int *temporary) {
    *temporary = 0;
    for (int i = 0; d->cache.capacity > 0 && i < d->ncomponents; i++) {
        ComponentEntry *e = &d->components[i];
        if (memcmp(e->sha256, w->sha256, 32) == 0 && same_exports(e->calls, w->component)) {
            d->cache.hits++;
            e->last_used = ++d->cache.tick;
            *out = *e;
            return OUT_OK;
        }
    }
    d->cache.misses++;
    int outcome = compile_component(d, w, out);
    if (outcome != OUT_OK)
        return outcome;
    out->last_used = ++d->cache.tick;
    if (d->cache.capacity <= 0) {
        *temporary = 1;
        return OUT_OK;
    }
    if (d->ncomponents == d->cache.capacity) {
        int oldest = 0;
        for (int i = 1; i < d->ncomponents; i++)
            if (d->components[i].last_used < d->components[oldest].last_used) oldest = i;
        entry_free(d->component_api, &d->components[oldest]);
        d->cache.evictions++;
        d->components[oldest] = *out;
        return OUT_OK;
    }
    ComponentEntry *grown = realloc(d->components, sizeof(ComponentEntry) * (size_t)(d->ncomponents + 1));
    if (grown == NULL) {
        *temporary = 1;
        return OUT_OK;
    }
    d->components = grown;
    d->components[d->ncomponents++] = *out;
    return OUT_OK;
}

/* ---- One request ---- */

/* The `wait` policy, as request_loop.c's for core modules: a pool with no free slot is tried again every 20 µs until one
 * frees or the budget is spent.  The last error (NULL: instantiated). */
static wasmtime_error_t *wait_for_a_slot(Driver *d, wasmtime_context_t *context, const ComponentEntry *e,
                                         wasmtime_component_instance_t *instance, wasmtime_error_t *err) {
    const ComponentApi *capi = d->component_api;
    int64_t began = now_ns();
    int waited = 0;
    while (driver_slot_retry(d, &err, began, &waited))
        err = capi->wasmtime_component_linker_instantiate(d->component_linker, context, e->component, instance);
    d->wait_total_ns += (uint64_t)(now_ns() - began);
    return err;
}

/* Instantiated in `context` and each call's function looked up into c->funcs: OUT_OK, or how it failed. */
static int instance_in_store(Driver *d, ComponentCall *c, wasmtime_context_t *context, const ComponentEntry *e,
                             int64_t *stamps, int64_t *detail) {
    const ComponentApi *capi = d->component_api;
    wasmtime_component_instance_t instance;
    wasmtime_error_t *err = capi->wasmtime_component_linker_instantiate(d->component_linker, context, e->component, &instance);
    if (err != NULL && d->wait_ns >= 0)
        err = wait_for_a_slot(d, context, e, &instance, err);
    if (err != NULL) {
        *detail = driver_drop_error(d, err, "");
        return OUT_ERROR;
    }
    d->instances++; /* counted where wasmtime made it: a request that kept an instance instead would not count one */
    if (stamps) stamps[3] = now_ns();
    for (size_t k = 0; k < c->ncalls; k++) {
        if (!capi->wasmtime_component_instance_get_func(&instance, context, e->indices[k], &c->funcs[k])) {
            driver_remember_text(d, "component export is not a function");
            return OUT_NO_EXPORT;
        }
    }
    if (stamps) stamps[4] = now_ns();
    return OUT_OK;
}

/* The calls made in order through c->funcs in `context`, each result into its slot: OUT_OK or the first failure's
 * outcome (the calls after it not made). */
static int calls_made(Driver *d, ComponentCall *c, wasmtime_context_t *context, int64_t *stamps, int64_t *detail) {
    const ComponentApi *capi = d->component_api;
    int64_t *steps = d->steps; /* a phased request of several calls: a stamp before the first call and after each */
    if (steps) steps[0] = now_ns();
    for (size_t k = 0; k < c->ncalls; k++) {
        ComponentStep *s = &c->calls[k];
        wasmtime_error_t *err = capi->wasmtime_component_func_call(&c->funcs[k], context, s->args, s->nargs, &c->results[k],
                                                                   s->returns ? 1 : 0);
        if (err == NULL)
            err = capi->wasmtime_component_func_post_return(&c->funcs[k], context);
        if (err != NULL) {
            char prefix[160] = ""; /* of several calls, the one that failed is named */
            if (c->ncalls > 1) snprintf(prefix, sizeof prefix, "call %zu of %zu (%.80s): ", k + 1, c->ncalls, s->entry);
            return component_call_failed(d, err, prefix, detail); /* a trap, or a WASI exit, comes back as an error */
        }
        if (steps && k + 1 < STEP_STAMPS) steps[k + 1] = now_ns();
    }
    if (stamps) stamps[5] = now_ns();
    return OUT_OK;
}

/* Instantiated, each call's function looked up, then the calls made (none for an instantiate-only request): OUT_OK or
 * the first failure's outcome. */
static int calls_in_store(Driver *d, ComponentCall *c, wasmtime_context_t *context, const ComponentEntry *e,
                          int64_t *stamps, int64_t *detail) {
    int outcome = instance_in_store(d, c, context, e, stamps, detail);
    if (outcome == OUT_OK && c->instantiate_only && stamps) stamps[5] = stamps[4];
    return outcome == OUT_OK && !c->instantiate_only ? calls_made(d, c, context, stamps, detail) : outcome;
}

/* Call k's result against its expectation (or learned as it on the first request): 1 when it holds (the result then
 * kept as the expectation, or left for the caller to free), 0 when it differs. */
static int step_holds(ComponentStep *s, wasmtime_component_val_t *result, int *kept) {
    *kept = 0;
    if (!s->returns || s->check == CHECK_NONE)
        return 1;
    if (s->check == CHECK_FIRST && !s->learned) {
        s->expected = *result; /* kept: the caller owns a result, freed with the workload */
        s->learned = 1;
        *kept = 1;
        return 1;
    }
    return cvalue_equal(result, &s->expected);
}

/* Every call's result against its expectation, in order, after the store is gone (the results are the caller's); each
 * freed unless kept.  The first that differs ends the request as OUT_MISMATCH, kept with its call and request number. */
static int judge(Driver *d, ComponentCall *c, int outcome) {
    const ComponentApi *capi = d->component_api;
    int differs = 0;
    for (size_t k = 0; k < c->ncalls; k++) {
        ComponentStep *s = &c->calls[k];
        int kept = 0;
        if (outcome == OUT_OK && !differs && !step_holds(s, &c->results[k], &kept)) {
            differs = 1;
            char message[200];
            snprintf(message, sizeof message, "request %" PRIu64 ", call %zu of %zu (%.80s): the result differs from %s",
                     c->requests, k + 1, c->ncalls, s->entry, s->check == CHECK_FIRST ? "the first request's" : "the expected value");
            driver_remember_text(d, message);
            if (c->has_differing)
                capi->wasmtime_component_val_delete(&c->differing);
            c->differing = c->results[k]; /* kept (the block stops here), for the failure to name what came back */
            c->has_differing = 1;
            c->differing_call = k;
            c->differing_request = c->requests;
            kept = 1;
        }
        /* A failed request's slots hold what its calls left (zeroed where none ran): freed all the same. */
        if (s->returns && !kept)
            capi->wasmtime_component_val_delete(&c->results[k]);
        memset(&c->results[k], 0, sizeof c->results[k]); /* a result slot must start zeroed */
    }
    return differs ? OUT_MISMATCH : outcome;
}

/* A new store made ready as a core request's (store_ready), with a default WASI context for a component importing WASI
 * that is not a command (a command's context is set by store_ready), then a wasi-http context for a proxy: OUT_OK or
 * OUT_ERROR. */
static int component_store_ready(Driver *d, const Workload *w, wasmtime_store_t *store, wasmtime_context_t *context,
                                 int64_t *detail) {
    const Api *api = d->api;
    int outcome = store_ready(d, w, store, context, detail);
    if (outcome == OUT_OK && w->component->wasi && w->wasi == NULL) {
        /* Without a WASI context wasmtime aborts the process at the guest's first WASI call. */
        wasmtime_error_t *err = api->wasmtime_context_set_wasi(context, api->wasi_config_new());
        if (err != NULL) {
            *detail = driver_drop_error(d, err, "WasmtimeError: ");
            outcome = OUT_ERROR;
        }
    }
    if (outcome == OUT_OK && w->component->wasi_http) /* after the WASI context, which wasmtime's wasi-http one needs */
        ((const ComponentApi *)d->component_api)->wasmtime_context_set_wasi_http(context);
    return outcome;
}

int component_serve(Driver *d, Workload *w, int64_t *stamps, int64_t *detail) {
    const Api *api = d->api;
    const ComponentApi *capi = d->component_api;
    ComponentCall *c = w->component;
    ComponentEntry e;
    int temporary = 0;
    *detail = 0;
    c->requests++;
    int outcome = component_of(d, w, &e, &temporary);
    if (outcome != OUT_OK)
        return outcome;
    if (stamps) stamps[1] = now_ns();
    wasmtime_store_t *store = api->wasmtime_store_new(d->engine, NULL, NULL);
    wasmtime_context_t *context = api->wasmtime_store_context(store);
    outcome = component_store_ready(d, w, store, context, detail);
    if (stamps) stamps[2] = now_ns();
    if (outcome == OUT_OK)
        outcome = calls_in_store(d, c, context, &e, stamps, detail);
    api->wasmtime_store_delete(store);
    if (temporary)
        entry_free(capi, &e);
    if (stamps) {
        stamps[6] = now_ns();
        for (int k = 2; k < 6; k++)
            if (stamps[k] == 0) stamps[k] = stamps[6];
    }
    if (c->command)
        outcome = component_command_judge(d, w->wasi, &c->results[c->ncalls - 1], c->calls[c->ncalls - 1].returns, outcome, detail);
    outcome = judge(d, c, outcome);
    if (stamps) stamps[7] = now_ns();
    return outcome;
}

/* ---- Instance reuse ---- */

void component_drop_kept(Driver *d, Workload *w) {
    ComponentCall *c = w->component;
    if (c == NULL)
        return;
    KeptComponent *k = &c->kept;
    if (k->store != NULL)
        d->api->wasmtime_store_delete(k->store);
    if (k->temporary)
        entry_free(d->component_api, &k->entry);
    memset(k, 0, sizeof *k);
}

/* A fresh instance kept for the workload's next requests: its component, a new store made ready, instantiated (the
 * `wait` policy's retries included) and each call's function looked up.  OUT_OK, or how it failed (nothing kept). */
static int keep_fresh_component(Driver *d, Workload *w, int64_t *detail) {
    KeptComponent *k = &w->component->kept;
    int outcome = component_of(d, w, &k->entry, &k->temporary);
    if (outcome != OUT_OK) {
        memset(k, 0, sizeof *k);
        return outcome;
    }
    k->store = d->api->wasmtime_store_new(d->engine, NULL, NULL);
    wasmtime_context_t *context = d->api->wasmtime_store_context(k->store);
    outcome = component_store_ready(d, w, k->store, context, detail);
    if (outcome == OUT_OK)
        outcome = instance_in_store(d, w->component, context, &k->entry, NULL, detail);
    if (outcome != OUT_OK)
        component_drop_kept(d, w);
    return outcome;
}

/* The fresh request's results cloned as the workload's reference (its slots stay for judge): 0, or -1 when the library
 * cannot clone a component value (the message kept). */
static int keep_reference(Driver *d, ComponentCall *c) {
    const ComponentApi *capi = d->component_api;
    if (capi->wasmtime_component_val_clone == NULL) {
        driver_remember_text(d, "this libwasmtime lacks wasmtime_component_val_clone, which instance reuse of components needs");
        return -1;
    }
    for (size_t k = 0; k < c->ncalls; k++)
        if (c->calls[k].returns) capi->wasmtime_component_val_clone(&c->results[k], &c->reference[k]);
    c->has_reference = 1;
    return 0;
}

/* A reused request's results against the reference (when there is one and the request ended ok), then freed and their
 * slots zeroed: 1 when any differs. */
static int differs_from_reference(Driver *d, ComponentCall *c, int outcome) {
    const ComponentApi *capi = d->component_api;
    int differs = 0;
    for (size_t k = 0; k < c->ncalls; k++) {
        if (!c->calls[k].returns)
            continue;
        if (outcome == OUT_OK && c->has_reference && !cvalue_equal(&c->results[k], &c->reference[k]))
            differs = 1;
        capi->wasmtime_component_val_delete(&c->results[k]);
        memset(&c->results[k], 0, sizeof c->results[k]);
    }
    return differs || outcome != OUT_OK;
}

/* See component_loop.h.  As serve_reused for a core module: the instance is dropped in its `reuse`-th request or after
 * any request that did not end ok (a trap poisons a component instance); no instance outlives its block (the block loop
 * drops what is kept).  A fresh request is judged as component_serve judges it; a reused one is only compared. */
int component_serve_reused(Driver *d, Workload *w, int64_t *detail, int64_t *memory_bytes, int64_t *fresh, int64_t *carried) {
    ComponentCall *c = w->component;
    KeptComponent *k = &c->kept;
    *detail = 0;
    *memory_bytes = -1; /* a component's memories are not read after a trap */
    *carried = 0;
    *fresh = k->store == NULL;
    c->requests++;
    if (*fresh) {
        int made = keep_fresh_component(d, w, detail);
        if (made != OUT_OK)
            return made;
    }
    int outcome = c->instantiate_only ? OUT_OK : calls_made(d, c, d->api->wasmtime_store_context(k->store), NULL, detail);
    /* A call that failed (a trap, or a command's wasi:cli/exit: wasmtime poisons the instance either way) drops it, even
     * when the exit is the command's expected end. */
    if (++k->served >= d->reuse || outcome != OUT_OK)
        component_drop_kept(d, w);
    /* A command's end judged as component_serve judges it; its outputs, what its kept WASI context's stdio files gained
     * since the request before it, are compared with the fresh reference's by the block loop (check_outputs). */
    if (c->command)
        outcome = component_command_judge(d, w->wasi, &c->results[c->ncalls - 1], c->calls[c->ncalls - 1].returns, outcome, detail);
    if (*fresh) {
        if (outcome == OUT_OK && !c->has_reference && keep_reference(d, c) != 0)
            outcome = OUT_ERROR;
        return judge(d, c, outcome);
    }
    int differs = differs_from_reference(d, c, outcome);
    *carried = c->has_reference && differs;
    return outcome;
}
