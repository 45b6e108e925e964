/*
 * A component request in C (issue 25): per request the compiled component (compiled per request, or from the driver's
 * component cache keyed by SHA-256, with its export index looked up once), a fresh store, a fresh instance through the
 * driver's component linker, the export called with an argument tree built once, its result compared with the
 * expectation tree (recursively, floats by their bits) on every request, post_return, the result freed, the store
 * deleted.  No Python here: component_inputs.c builds the trees from the boundary's ComponentValue structures.
 */
#ifndef WASMLAB_COMPONENT_LOOP_H
#define WASMLAB_COMPONENT_LOOP_H

#include "component_api.h"
#include "driver.h"

/* What one component workload calls and checks.  Trees built here (arguments, a given expectation) are malloc'd and
 * freed by cvalue_free; a learned expectation is wasmtime's (a first result) and freed by wasmtime_component_val_delete. */
typedef struct ComponentCall {
    const ComponentApi *capi;
    char *entry;
    size_t entry_len;
    wasmtime_component_val_t *args;
    size_t nargs;
    int returns;
    int check;                        /* CHECK_NONE, CHECK_EXPECTED or CHECK_FIRST */
    int learned;                      /* expected holds a first result (wasmtime's memory) */
    int wasi;                         /* a WASI p2 context on each store (the component imports wasi:*) */
    int command;                      /* a component command: the workload's WasiSpec is its context (component_command.h) */
    wasmtime_component_val_t expected;
    int has_differing;                /* the last result that did not match, kept (wasmtime's) so Python can name it */
    wasmtime_component_val_t differing;
} ComponentCall;

/* One compiled component in the driver's cache, with its entry's export index. */
typedef struct ComponentEntry {
    uint8_t sha256[32];
    const char *entry;
    wasmtime_component_t *component;
    wasmtime_component_export_index_t *index;
} ComponentEntry;

/* The children of a tree built here freed (the value itself is the caller's slot) and the value zeroed. */
void cvalue_free(wasmtime_component_val_t *v);

/* 1 when `a` and `b` are the same value (kinds, names, items; floats by their bits), else 0. */
int cvalue_equal(const wasmtime_component_val_t *a, const wasmtime_component_val_t *b);

/* What a component workload holds, freed (NULL: nothing). */
void component_call_free(ComponentCall *c);

/* The driver's component linker (made on first use; WASI p2 added to it once when `wasi`): 0, or -1 (no linker, or
 * WASI p2 could not be added: the message kept as the driver's first). */
int component_driver_ready(Driver *d, const ComponentApi *capi, int wasi);

/* Every cached component and the component linker freed. */
void component_driver_clear(Driver *d);

/* One whole component request, as serve() does a core one: its outcome (OUT_*), *detail written. */
int component_serve(Driver *d, Workload *w, int64_t *stamps, int64_t *detail);

#endif
