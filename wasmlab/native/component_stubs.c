/* A recipe's stubs of component imports on the driver's component linker: see component_stubs.h. */
#include "component_stubs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "component_values.h"
#include "failures.h"

#define MAX_INSTANCE_DEPTH 16 /* instances inside instances; a deeper import is refused */

/* What one host function holds: the constant it returns, and the functions that copy and free it. */
typedef struct {
    const ComponentApi *capi;
    int returns;
    wasmtime_component_val_t result;
} StubData;

/* The host function: the constant cloned into the result slot (the slot is wasmtime's, which frees it with its own
 * allocator after reading it, so it gets wasmtime's copy, never the tree itself); the arguments ignored. */
static wasmtime_error_t *stub_returns(void *data, wasmtime_context_t *context, const wasmtime_component_func_type_t *type,
                                      const wasmtime_component_val_t *args, size_t nargs, wasmtime_component_val_t *results,
                                      size_t nresults) {
    const StubData *s = data;
    if (s->returns && nresults == 1)
        s->capi->wasmtime_component_val_clone(&s->result, &results[0]);
    return NULL;
}

static void stub_finalize(void *data) {
    StubData *s = data;
    cvalue_free(&s->result);
    free(s);
}

/* One function added to `instance`, its constant handed to the linker: 0, or -1 with the message kept. */
static int add_stub(Driver *d, const ComponentApi *capi, wasmtime_component_linker_instance_t *instance, ComponentStub *s) {
    StubData *data = calloc(1, sizeof *data);
    if (data == NULL) {
        driver_remember_text(d, "out of memory for a stub");
        return -1;
    }
    data->capi = capi;
    data->returns = s->returns;
    data->result = s->result;
    memset(&s->result, 0, sizeof s->result);
    /* On failure wasmtime drops the function, and with it `data` through the finalizer. */
    wasmtime_error_t *err = capi->wasmtime_component_linker_instance_add_func(instance, s->name, s->name_len, stub_returns,
                                                                               data, stub_finalize);
    if (err != NULL) {
        char prefix[160];
        snprintf(prefix, sizeof prefix, "the stub of %.100s: ", s->name);
        (void)driver_drop_error(d, err, prefix);
        return -1;
    }
    return 0;
}

/* How many leading instance names stubs `a` and `b` share (a NULL `a` shares none). */
static size_t shared_depth(const ComponentStub *a, const ComponentStub *b, size_t limit) {
    size_t k = 0;
    while (a != NULL && k < limit && k < a->depth && k < b->depth && a->instance_len[k] == b->instance_len[k] &&
           memcmp(a->instance[k], b->instance[k], a->instance_len[k]) == 0)
        k++;
    return k;
}

int component_stubs_define(Driver *d, const ComponentApi *capi, ComponentStub *stubs, size_t n) {
    if (n == 0 || d->component_stubs)
        return 0;
    /* The open instances, the root at 0: the stubs come ordered by instance, so each is opened once and closed when the
     * next stub leaves it (wasmtime refuses a second definition of one name). */
    wasmtime_component_linker_instance_t *open[MAX_INSTANCE_DEPTH + 1];
    open[0] = capi->wasmtime_component_linker_root(d->component_linker);
    size_t depth = 0;
    const ComponentStub *along = NULL; /* the stub whose instances are open */
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        ComponentStub *s = &stubs[k];
        if (s->depth > MAX_INSTANCE_DEPTH) {
            driver_remember_text(d, "a stubbed import sits deeper than 16 instances");
            rc = -1;
            break;
        }
        size_t keep = shared_depth(along, s, depth);
        while (depth > keep)
            capi->wasmtime_component_linker_instance_delete(open[depth--]);
        while (rc == 0 && depth < s->depth) {
            wasmtime_error_t *err = capi->wasmtime_component_linker_instance_add_instance(
                open[depth], s->instance[depth], s->instance_len[depth], &open[depth + 1]);
            if (err != NULL) {
                (void)driver_drop_error(d, err, "a stub's instance: ");
                rc = -1;
            } else {
                depth++;
            }
        }
        along = s;
        if (rc == 0)
            rc = add_stub(d, capi, open[depth], s);
    }
    while (depth > 0)
        capi->wasmtime_component_linker_instance_delete(open[depth--]);
    capi->wasmtime_component_linker_instance_delete(open[0]);
    if (rc == 0)
        d->component_stubs = 1;
    return rc;
}

void component_stubs_free(ComponentStub *stubs, size_t n) {
    for (size_t k = 0; stubs != NULL && k < n; k++) {
        ComponentStub *s = &stubs[k];
        for (size_t i = 0; s->instance != NULL && i < s->depth; i++) free(s->instance[i]);
        free(s->instance);
        free(s->instance_len);
        free(s->name);
        cvalue_free(&s->result);
    }
    free(stubs);
}
