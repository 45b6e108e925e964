/* The component functions resolved by name: see component_api.h. */
#include "component_api.h"

#include <dlfcn.h>

const char *const COMPONENT_FUNCTION_NAMES[] = {
#define NAME_COMPONENT(name, ret, args) #name,
    WASMLAB_COMPONENT_FUNCTIONS(NAME_COMPONENT)
    WASMLAB_COMPONENT_STUB_FUNCTIONS(NAME_COMPONENT)
    WASMLAB_COMPONENT_HTTP_FUNCTIONS(NAME_COMPONENT)
#undef NAME_COMPONENT
};
const size_t COMPONENT_FUNCTION_COUNT = sizeof COMPONENT_FUNCTION_NAMES / sizeof COMPONENT_FUNCTION_NAMES[0];

static const char *const REQUIRED_NAMES[] = {
#define NAME_COMPONENT(name, ret, args) #name,
    WASMLAB_COMPONENT_FUNCTIONS(NAME_COMPONENT)
#undef NAME_COMPONENT
};
const size_t COMPONENT_REQUIRED_COUNT = sizeof REQUIRED_NAMES / sizeof REQUIRED_NAMES[0];

static const char *const HTTP_NAMES[] = {
#define NAME_COMPONENT(name, ret, args) #name,
    WASMLAB_COMPONENT_HTTP_FUNCTIONS(NAME_COMPONENT)
#undef NAME_COMPONENT
};
const size_t COMPONENT_HTTP_COUNT = sizeof HTTP_NAMES / sizeof HTTP_NAMES[0];

const char *component_api_resolve(void *handle, ComponentApi *api) {
    /* The fields are the table's function pointers in order (the required ones, the stubs', wasi:http's): filled one by
     * one; resolved only when every required one is, the stubs' (wasi:http's) usable only when each of theirs is. */
    void **slots = (void **)api;
    const size_t http_from = COMPONENT_FUNCTION_COUNT - COMPONENT_HTTP_COUNT;
    api->stubs_missing = api->http_missing = NULL;
    for (size_t i = 0; i < COMPONENT_FUNCTION_COUNT; i++) {
        void *symbol = dlsym(handle, COMPONENT_FUNCTION_NAMES[i]);
        if (symbol == NULL && i < COMPONENT_REQUIRED_COUNT)
            return COMPONENT_FUNCTION_NAMES[i];
        if (symbol == NULL && i < http_from && api->stubs_missing == NULL)
            api->stubs_missing = COMPONENT_FUNCTION_NAMES[i];
        if (symbol == NULL && i >= http_from && api->http_missing == NULL)
            api->http_missing = COMPONENT_FUNCTION_NAMES[i];
        slots[i] = symbol;
    }
    api->resolved = 1;
    return NULL;
}
