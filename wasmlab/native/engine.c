/* Engines made through one library's own functions: see engine.h. */
#include "engine.h"

#include <dlfcn.h>
#include <stdio.h>

#include "clock.h"

/* The function `format` names (with `knob`), or NULL with its name in `missing`. */
static void *symbol_of(void *handle, const char *format, const char *knob, char *missing, size_t size) {
    char name[160];
    snprintf(name, sizeof name, format, knob);
    void *symbol = dlsym(handle, name);
    if (symbol == NULL)
        snprintf(missing, size, "%s", name);
    return symbol;
}

#define FEATURE_SETTER "wasmtime_config_wasm_%s_set"
#define POOLING_SETTER "wasmtime_pooling_allocation_config_%s_set"

/* Every setter `knobs` need exists: 0, or -1 with the first missing one's name in `missing`. */
static int setters_exist(void *handle, const char *format, const Knob *knobs, int n, char *missing, size_t size) {
    for (int i = 0; i < n; i++)
        if (symbol_of(handle, format, knobs[i].name, missing, size) == NULL)
            return -1;
    return 0;
}

/* The pooling strategy with `knobs` set into `config` (every function known to exist). */
static void set_pooling(void *handle, void *config, const Knob *knobs, int n, char *missing, size_t size) {
    void *(*pool_new)(void) = (void *(*)(void))dlsym(handle, "wasmtime_pooling_allocation_config_new");
    void (*pool_delete)(void *) = (void (*)(void *))dlsym(handle, "wasmtime_pooling_allocation_config_delete");
    void (*strategy_set)(void *, const void *) = (void (*)(void *, const void *))dlsym(handle, "wasmtime_pooling_allocation_strategy_set");
    void *pool = pool_new();
    for (int i = 0; i < n; i++) {
        void (*set)(void *, uint64_t) = (void (*)(void *, uint64_t))symbol_of(handle, POOLING_SETTER, knobs[i].name, missing, size);
        set(pool, knobs[i].value);
    }
    strategy_set(config, pool);
    pool_delete(pool);
}

wasm_engine_t *engine_new(void *handle, const Knob *pooling, int npooling, const Knob *features, int nfeatures,
                          engine_delete_fn *delete_out, char *missing, size_t size) {
    missing[0] = '\0';
    if (setters_exist(handle, FEATURE_SETTER, features, nfeatures, missing, size) != 0)
        return NULL;
    void *(*config_new)(void) = (void *(*)(void))symbol_of(handle, "%s", "wasm_config_new", missing, size);
    wasm_engine_t *(*new_with_config)(void *) =
        config_new ? (wasm_engine_t * (*)(void *)) symbol_of(handle, "%s", "wasm_engine_new_with_config", missing, size) : NULL;
    *delete_out = new_with_config ? (engine_delete_fn)symbol_of(handle, "%s", "wasm_engine_delete", missing, size) : NULL;
    if (*delete_out == NULL)
        return NULL;
    if (npooling >= 0) {
        static const char *const pooling_functions[] = {"wasmtime_pooling_allocation_config_new",
                                                        "wasmtime_pooling_allocation_config_delete",
                                                        "wasmtime_pooling_allocation_strategy_set"};
        for (size_t i = 0; i < sizeof pooling_functions / sizeof pooling_functions[0]; i++)
            if (symbol_of(handle, "%s", pooling_functions[i], missing, size) == NULL)
                return NULL;
        if (setters_exist(handle, POOLING_SETTER, pooling, npooling, missing, size) != 0)
            return NULL;
    }
    void *config = config_new();
    for (int i = 0; i < nfeatures; i++) {
        void (*set)(void *, bool) = (void (*)(void *, bool))symbol_of(handle, FEATURE_SETTER, features[i].name, missing, size);
        set(config, features[i].value != 0);
    }
    if (npooling >= 0)
        set_pooling(handle, config, pooling, npooling, missing, size);
    return new_with_config(config);
}

wasmtime_error_t *engine_compile_times(const Api *api, wasm_engine_t *engine, const uint8_t *wasm, size_t len, int repeats,
                                       int64_t *times) {
    wasmtime_error_t *err = NULL;
    for (int i = 0; i < repeats && err == NULL; i++) {
        wasmtime_module_t *module = NULL;
        int64_t start = now_ns();
        err = api->wasmtime_module_new(engine, wasm, len, &module);
        times[i] = now_ns() - start;
        if (err == NULL)
            api->wasmtime_module_delete(module);
    }
    return err;
}
