/*
 * Component value trees built by the lab (argument trees, a given expectation: malloc'd, freed by cvalue_free) and
 * their comparison with what wasmtime returned (recursively, floats by their bits).  Apart from the component loop so
 * that each file holds one concept.
 */
#ifndef WASMLAB_COMPONENT_VALUES_H
#define WASMLAB_COMPONENT_VALUES_H

#include "component_api.h"

/* The children of a tree built here freed (the value itself is the caller's slot) and the value zeroed. */
void cvalue_free(wasmtime_component_val_t *v);

/* 1 when `a` and `b` are the same value (kinds, names, items; floats by their bits), else 0. */
int cvalue_equal(const wasmtime_component_val_t *a, const wasmtime_component_val_t *b);

#endif
