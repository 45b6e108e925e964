/* A libwasmtime's functions resolved by name: see library.h. */
#include "library.h"

#include <dlfcn.h>

const char *const FUNCTION_NAMES[] = {
#define NAME(name, ret, args) #name,
    WASMLAB_FUNCTIONS(NAME)
#undef NAME
};
const size_t FUNCTION_COUNT = sizeof FUNCTION_NAMES / sizeof FUNCTION_NAMES[0];

const char *const WASI_FUNCTION_NAMES[] = {
#define NAME_WASI(name, ret, args, n) #name,
    WASMLAB_WASI_FUNCTIONS(NAME_WASI)
#undef NAME_WASI
};
const int WASI_FUNCTION_NARGS[] = {
#define NARGS_WASI(name, ret, args, n) n,
    WASMLAB_WASI_FUNCTIONS(NARGS_WASI)
#undef NARGS_WASI
};
const size_t WASI_FUNCTION_COUNT = sizeof WASI_FUNCTION_NAMES / sizeof WASI_FUNCTION_NAMES[0];

void *library_open(const char *path) {
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

/* `count` symbols named `names` into consecutive function pointers from `slots` (the Api's fields are declared in the
 * tables' order, all function pointers). */
static const char *resolve(void *handle, const char *const *names, size_t count, void **slots) {
    for (size_t i = 0; i < count; i++) {
        void *symbol = dlsym(handle, names[i]);
        if (symbol == NULL)
            return names[i];
        slots[i] = symbol;
    }
    return NULL;
}

const char *library_resolve(void *handle, Api *api) {
    return resolve(handle, FUNCTION_NAMES, FUNCTION_COUNT, (void **)api);
}

const char *library_resolve_wasi(void *handle, Api *api) {
    if (api->wasi_resolved)
        return NULL;
    const char *missing = resolve(handle, WASI_FUNCTION_NAMES, WASI_FUNCTION_COUNT, (void **)&api->wasi_config_new);
    if (missing == NULL)
        api->wasi_resolved = 1;
    return missing;
}
