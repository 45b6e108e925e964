/* The component functions resolved by name: see component_api.h. */
#include "component_api.h"

#include <dlfcn.h>

const char *const COMPONENT_FUNCTION_NAMES[] = {
#define NAME_COMPONENT(name, ret, args) #name,
    WASMLAB_COMPONENT_FUNCTIONS(NAME_COMPONENT)
#undef NAME_COMPONENT
};
const size_t COMPONENT_FUNCTION_COUNT = sizeof COMPONENT_FUNCTION_NAMES / sizeof COMPONENT_FUNCTION_NAMES[0];

const char *component_api_resolve(void *handle, ComponentApi *api) {
    /* The fields are the table's function pointers in order: filled one by one, and marked resolved only when all are. */
    void **slots = (void **)api;
    for (size_t i = 0; i < COMPONENT_FUNCTION_COUNT; i++) {
        void *symbol = dlsym(handle, COMPONENT_FUNCTION_NAMES[i]);
        if (symbol == NULL)
            return COMPONENT_FUNCTION_NAMES[i];
        slots[i] = symbol;
    }
    api->resolved = 1;
    return NULL;
}
