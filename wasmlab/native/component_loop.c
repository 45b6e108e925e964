/* A component request in C: see component_loop.h. */
#include "component_loop.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "component_command.h"
#include "failures.h"
#include "store_setup.h"

/* ---- Value trees ---- */

static void free_name(wasm_byte_vec_t *name) {
    free(name->data);
}

static void free_payload(wasmtime_component_val_t *inner) {
    if (inner != NULL) {
        cvalue_free(inner);
        free(inner);
    }
}

void cvalue_free(wasmtime_component_val_t *v) {
    switch (v->kind) {
    case CVAL_STRING: case CVAL_ENUM: free_name(&v->of.string); break;
    case CVAL_LIST: case CVAL_TUPLE:
        for (size_t i = 0; i < v->of.list.size; i++) cvalue_free(&v->of.list.data[i]);
        free(v->of.list.data);
        break;
    case CVAL_RECORD:
        for (size_t i = 0; i < v->of.record.size; i++) {
            free_name(&v->of.record.data[i].name);
            cvalue_free(&v->of.record.data[i].val);
        }
        free(v->of.record.data);
        break;
    case CVAL_FLAGS:
        for (size_t i = 0; i < v->of.flags.size; i++) free_name(&v->of.flags.data[i]);
        free(v->of.flags.data);
        break;
    case CVAL_VARIANT:
        free_name(&v->of.variant.discriminant);
        free_payload(v->of.variant.val);
        break;
    case CVAL_OPTION: free_payload(v->of.option); break;
    case CVAL_RESULT: free_payload(v->of.result.val); break;
    default: break;
    }
    memset(v, 0, sizeof *v);
}

static int same_name(const wasm_byte_vec_t *a, const wasm_byte_vec_t *b) {
    return a->size == b->size && (a->size == 0 || memcmp(a->data, b->data, a->size) == 0);
}

static int same_optional(const wasmtime_component_val_t *a, const wasmtime_component_val_t *b) {
    if (a == NULL || b == NULL)
        return a == b;
    return cvalue_equal(a, b);
}

static int same_items(const wasmtime_component_val_t *a, const wasmtime_component_val_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!cvalue_equal(&a[i], &b[i])) return 0;
    return 1;
}

int cvalue_equal(const wasmtime_component_val_t *a, const wasmtime_component_val_t *b) {
    if (a->kind != b->kind)
        return 0;
    const wasmtime_component_valunion_t *x = &a->of, *y = &b->of;
    switch (a->kind) {
    case CVAL_BOOL: return x->boolean == y->boolean;
    case CVAL_S8: case CVAL_U8: return x->u8 == y->u8;
    case CVAL_S16: case CVAL_U16: return x->u16 == y->u16;
    case CVAL_S32: case CVAL_U32: case CVAL_CHAR: case CVAL_F32: return x->u32 == y->u32; /* floats by their bits */
    case CVAL_S64: case CVAL_U64: case CVAL_F64: return x->u64 == y->u64;
    case CVAL_STRING: case CVAL_ENUM: return same_name(&x->string, &y->string);
    case CVAL_LIST: case CVAL_TUPLE:
        return x->list.size == y->list.size && same_items(x->list.data, y->list.data, x->list.size);
    case CVAL_RECORD:
        if (x->record.size != y->record.size) return 0;
        for (size_t i = 0; i < x->record.size; i++)
            if (!same_name(&x->record.data[i].name, &y->record.data[i].name) ||
                !cvalue_equal(&x->record.data[i].val, &y->record.data[i].val)) return 0;
        return 1;
    case CVAL_FLAGS:
        if (x->flags.size != y->flags.size) return 0;
        for (size_t i = 0; i < x->flags.size; i++)
            if (!same_name(&x->flags.data[i], &y->flags.data[i])) return 0;
        return 1;
    case CVAL_VARIANT:
        return same_name(&x->variant.discriminant, &y->variant.discriminant) && same_optional(x->variant.val, y->variant.val);
    case CVAL_OPTION: return same_optional(x->option, y->option);
    case CVAL_RESULT: return x->result.is_ok == y->result.is_ok && same_optional(x->result.val, y->result.val);
    default: return 0; /* resources and maps are not compared: never equal */
    }
}

void component_call_free(ComponentCall *c) {
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nargs; i++) cvalue_free(&c->args[i]);
    free(c->args);
    if (c->has_differing)
        c->capi->wasmtime_component_val_delete(&c->differing);
    if (c->learned)
        c->capi->wasmtime_component_val_delete(&c->expected);
    else
        cvalue_free(&c->expected);
    free(c->entry);
    free(c);
}

/* ---- The driver's linker and cache ---- */

int component_driver_ready(Driver *d, const ComponentApi *capi, int wasi) {
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
    return 0;
}

void component_driver_clear(Driver *d) {
    const ComponentApi *capi = d->component_api;
    if (capi == NULL)
        return;
    for (int i = 0; i < d->ncomponents; i++) {
        capi->wasmtime_component_export_index_delete(d->components[i].index);
        capi->wasmtime_component_delete(d->components[i].component);
    }
    free(d->components);
    d->components = NULL;
    d->ncomponents = 0;
    if (d->component_linker != NULL)
        capi->wasmtime_component_linker_delete(d->component_linker);
    d->component_linker = NULL;
    d->component_wasip2 = 0;
}

/* Compiled and its entry's export index found: OUT_OK, OUT_COMPILE_ERROR or OUT_NO_EXPORT (message kept). */
static int compile_component(Driver *d, const Workload *w, ComponentEntry *out) {
    const ComponentApi *capi = d->component_api;
    int64_t start = now_ns();
    wasmtime_error_t *err = capi->wasmtime_component_new(d->engine, w->wasm, w->wasm_len, &out->component);
    d->compile_ns += (uint64_t)(now_ns() - start);
    if (err != NULL) {
        (void)driver_drop_error(d, err, "CompileError: ");
        return OUT_COMPILE_ERROR;
    }
    const ComponentCall *c = w->component;
    /* INTERFACE#FUNCTION (and OUTER#INNER#FUNCTION): each name is found inside the interface before it, whose index is
     * its parent; the top level has none. */
    const char *name = c->entry, *end = c->entry + c->entry_len;
    wasmtime_component_export_index_t *index = NULL;
    for (;;) {
        const char *hash = memchr(name, '#', (size_t)(end - name));
        size_t len = (size_t)((hash != NULL ? hash : end) - name);
        wasmtime_component_export_index_t *next = capi->wasmtime_component_get_export_index(out->component, index, name, len);
        if (index != NULL)
            capi->wasmtime_component_export_index_delete(index);
        index = next;
        if (index == NULL || hash == NULL)
            break;
        name = hash + 1;
    }
    out->index = index;
    if (out->index == NULL) {
        capi->wasmtime_component_delete(out->component);
        driver_remember_text(d, "component export not found");
        return OUT_NO_EXPORT;
    }
    memcpy(out->sha256, w->sha256, 32);
    out->entry = c->entry;
    return OUT_OK;
}

/* The compiled component: a cache hit (same bytes, same entry) or compiled, and cached when the driver caches and its
 * cache has room (*temporary: this request frees it).  Not LRU yet: a full cache keeps what it holds. */
static int component_of(Driver *d, const Workload *w, ComponentEntry *out, int *temporary) {
    *temporary = 0;
    for (int i = 0; d->cache.capacity > 0 && i < d->ncomponents; i++) {
        ComponentEntry *e = &d->components[i];
        if (memcmp(e->sha256, w->sha256, 32) == 0 && strcmp(e->entry, w->component->entry) == 0) {
            d->cache.hits++;
            *out = *e;
            return OUT_OK;
        }
    }
    d->cache.misses++;
    int outcome = compile_component(d, w, out);
    if (outcome != OUT_OK)
        return outcome;
    ComponentEntry *grown = d->ncomponents < d->cache.capacity
        ? realloc(d->components, sizeof(ComponentEntry) * (size_t)(d->ncomponents + 1)) : NULL;
    if (grown == NULL) {
        *temporary = 1; /* uncached, full, or out of memory: served once and freed */
        return OUT_OK;
    }
    d->components = grown;
    d->components[d->ncomponents++] = *out;
    return OUT_OK;
}

/* ---- One request ---- */

/* Instantiated, looked up and called in `context`: OUT_OK (the result in *result) or the failure's outcome. */
static int call_in_store(Driver *d, ComponentCall *c, wasmtime_context_t *context, const ComponentEntry *e,
                         wasmtime_component_val_t *result, int64_t *stamps, int64_t *detail) {
    const ComponentApi *capi = d->component_api;
    wasmtime_component_instance_t instance;
    wasmtime_error_t *err = capi->wasmtime_component_linker_instantiate(d->component_linker, context, e->component, &instance);
    if (err != NULL) {
        *detail = driver_drop_error(d, err, "");
        return OUT_ERROR;
    }
    if (stamps) stamps[3] = now_ns();
    wasmtime_component_func_t func;
    if (!capi->wasmtime_component_instance_get_func(&instance, context, e->index, &func)) {
        driver_remember_text(d, "component export is not a function");
        return OUT_NO_EXPORT;
    }
    if (stamps) stamps[4] = now_ns();
    err = capi->wasmtime_component_func_call(&func, context, c->args, c->nargs, result, c->returns ? 1 : 0);
    if (err == NULL)
        err = capi->wasmtime_component_func_post_return(&func, context);
    if (stamps) stamps[5] = now_ns();
    if (err != NULL)
        return component_call_failed(d, err, detail); /* a trap, or a WASI exit, comes back as an error */
    return OUT_OK;
}

/* The result against the expectation (or learned as it on the first request); the result freed unless kept. */
static int judge(Driver *d, ComponentCall *c, wasmtime_component_val_t *result, int outcome) {
    if (outcome != OUT_OK)
        return outcome; /* whatever a failed call left in the slot was freed with the request */
    if (c->returns && c->check != CHECK_NONE) {
        if (c->check == CHECK_FIRST && !c->learned) {
            c->expected = *result; /* kept: the caller owns a result, freed with the workload */
            c->learned = 1;
            return outcome;
        }
        if (!cvalue_equal(result, &c->expected)) {
            driver_remember_text(d, c->check == CHECK_FIRST ? "the result differs from the first request's"
                                                            : "the result differs from the expected value");
            const ComponentApi *capi = d->component_api;
            if (c->has_differing)
                capi->wasmtime_component_val_delete(&c->differing);
            c->differing = *result; /* kept (the block stops here), for the failure to name what came back */
            c->has_differing = 1;
            return OUT_MISMATCH;
        }
    }
    if (c->returns)
        ((const ComponentApi *)d->component_api)->wasmtime_component_val_delete(result);
    return outcome;
}

int component_serve(Driver *d, Workload *w, int64_t *stamps, int64_t *detail) {
    const Api *api = d->api;
    const ComponentApi *capi = d->component_api;
    ComponentCall *c = w->component;
    ComponentEntry e;
    int temporary = 0;
    *detail = 0;
    int outcome = component_of(d, w, &e, &temporary);
    if (outcome != OUT_OK)
        return outcome;
    if (stamps) stamps[1] = now_ns();
    wasmtime_store_t *store = api->wasmtime_store_new(d->engine, NULL, NULL);
    wasmtime_context_t *context = api->wasmtime_store_context(store);
    wasmtime_component_val_t result;
    memset(&result, 0, sizeof result); /* a result slot must start zeroed */
    outcome = store_ready(d, w, store, context, detail);
    if (outcome == OUT_OK && c->wasi && w->wasi == NULL) { /* a command's context is set by store_ready */
        /* Without a WASI context wasmtime aborts the process at the guest's first WASI call. */
        wasmtime_error_t *err = api->wasmtime_context_set_wasi(context, api->wasi_config_new());
        if (err != NULL) {
            *detail = driver_drop_error(d, err, "WasmtimeError: ");
            outcome = OUT_ERROR;
        }
    }
    if (stamps) stamps[2] = now_ns();
    if (outcome == OUT_OK)
        outcome = call_in_store(d, c, context, &e, &result, stamps, detail);
    api->wasmtime_store_delete(store);
    if (temporary) {
        capi->wasmtime_component_export_index_delete(e.index);
        capi->wasmtime_component_delete(e.component);
    }
    if (stamps) {
        stamps[6] = now_ns();
        for (int k = 2; k < 6; k++)
            if (stamps[k] == 0) stamps[k] = stamps[6];
    }
    if (c->command)
        outcome = component_command_judge(d, w->wasi, &result, c->returns, outcome, detail);
    if (outcome != OUT_OK && c->returns)
        capi->wasmtime_component_val_delete(&result);
    outcome = judge(d, c, &result, outcome);
    if (stamps) stamps[7] = now_ns();
    return outcome;
}
