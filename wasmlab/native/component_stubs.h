/*
 * A recipe's stubs of component function imports on the driver's component linker (issue 25): each a host function in
 * its named instance (nested instances inside their parent) whose callback copies the stub's constant into the result
 * slot with wasmtime_component_val_clone, the arguments ignored.  The constant is a value tree built once from the
 * boundary's ComponentValue, as expected values are (component_inputs.c), and owned by the linker from then on (freed
 * by the function's finalizer when the linker goes).  Defined once per driver: every plan of one driver carries the
 * runtime's stubs merged (wasmlab/host/component_stubs.py), ordered by instance so that each is opened once.
 */
#ifndef WASMLAB_COMPONENT_STUBS_H
#define WASMLAB_COMPONENT_STUBS_H

#include "component_api.h"
#include "driver.h"

/* One stub as read from a ComponentStubPlan: the instances it sits in (outermost first), its name, its constant. */
typedef struct ComponentStub {
    char **instance;
    size_t *instance_len;
    size_t depth;
    char *name;
    size_t name_len;
    int returns;                       /* 0: the import returns nothing */
    wasmtime_component_val_t result;   /* built by the glue (cvalue_free); zeroed once handed to the linker */
} ComponentStub;

/* `stubs` (ordered by instance, then name) defined on d's component linker, unless the driver has them already: 0, or
 * -1 with the message kept as the driver's first.  Each defined stub's constant is handed to the linker. */
int component_stubs_define(Driver *d, const ComponentApi *capi, ComponentStub *stubs, size_t n);

/* What the stubs still hold (names, constants not handed over), and the array, freed. */
void component_stubs_free(ComponentStub *stubs, size_t n);

#endif
