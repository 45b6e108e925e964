/* An engine made through one library's own functions (another release's, for the driver): on-demand, or pooling with
 * knobs set by name. */
#ifndef WASMLAB_ENGINE_H
#define WASMLAB_ENGINE_H

#include "wasmtime_api.h"

/* A setting by name: a pooling knob (wasmtime_pooling_allocation_config_<name>_set, one integer: uint32_t or size_t,
 * passed as 64 bits, which the calling conventions of x86-64 and AArch64 make the same in a register) or a WebAssembly
 * proposal (wasmtime_config_wasm_<name>_set, value 0 or 1). */
typedef struct {
    const char *name;
    uint64_t value;
} Knob;

typedef void (*engine_delete_fn)(wasm_engine_t *);

/* An engine, pooling when npooling >= 0 (with those knobs), with `features` turned on or off.  Every function is resolved
 * before anything is made, so a missing one leaks nothing: NULL then, with its name in `missing` ("" when the library
 * made no engine).  *delete_out: the library's wasm_engine_delete.  A pool that cannot be reserved aborts inside
 * wasmtime: callers run this in a child process. */
wasm_engine_t *engine_new(void *handle, const Knob *pooling, int npooling, const Knob *features, int nfeatures,
                          engine_delete_fn *delete_out, char *missing, size_t size);

/* wasmtime_module_new of `wasm` on `engine`, `repeats` times (each module deleted), each time in `times`: NULL, or the
 * error of the compile that failed (the caller deletes it). */
wasmtime_error_t *engine_compile_times(const Api *api, wasm_engine_t *engine, const uint8_t *wasm, size_t len, int repeats,
                                       int64_t *times);

#endif
