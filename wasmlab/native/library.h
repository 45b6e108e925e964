/* A libwasmtime's functions resolved by name (dlsym) into an Api: wasmtime-py's own handle, or a library opened here. */
#ifndef WASMLAB_LIBRARY_H
#define WASMLAB_LIBRARY_H

#include "wasmtime_api.h"

extern const char *const FUNCTION_NAMES[];
extern const size_t FUNCTION_COUNT;
extern const char *const WASI_FUNCTION_NAMES[];
extern const int WASI_FUNCTION_NARGS[];
extern const size_t WASI_FUNCTION_COUNT;

/* dlopen with RTLD_NOW | RTLD_LOCAL (another release's library must not lend its symbols to anything else); NULL on
 * failure (dlerror() says why). */
void *library_open(const char *path);

/* The core functions into `api`: NULL, or the name of the first one the library lacks. */
const char *library_resolve(void *handle, Api *api);

/* The WASI functions into `api` (once): NULL, or the name of the first one the library lacks. */
const char *library_resolve_wasi(void *handle, Api *api);

#endif
