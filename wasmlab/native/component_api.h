/*
 * The wasmtime component C API, as far as the driver uses it (wasmtime 50): the value types and the functions, declared
 * as wasmtime's own headers declare them (crates/c-api/include/wasmtime/component/{component,linker,instance,func,val}.h).
 * Kept apart from wasmtime_api.h because they are optional: they are resolved by name (component_api.c) into a
 * ComponentApi, and a library without them still serves core modules; it serves no components and says so in one line.
 * tests/native/test_component_header.py checks every row of the table below against wasmtime._bindings and the value
 * structs' sizes (module.c's component_layout()) against its ctypes structures.
 */
#ifndef WASMLAB_COMPONENT_API_H
#define WASMLAB_COMPONENT_API_H

#include "wasmtime_api.h"

typedef struct wasmtime_component_t wasmtime_component_t;
typedef struct wasmtime_component_linker_t wasmtime_component_linker_t;
typedef struct wasmtime_component_export_index_t wasmtime_component_export_index_t;
typedef struct wasmtime_component_linker_instance_t wasmtime_component_linker_instance_t;
typedef struct wasmtime_component_func_type_t wasmtime_component_func_type_t;

typedef struct { uint64_t store_id; uint32_t __private; } wasmtime_component_instance_t;
typedef struct {
    struct { uint64_t store_id; uint32_t __private1; };
    uint32_t __private2;
    void *__private3;
} wasmtime_component_func_t;

/* The value kinds (wasmtime/component/val.h). */
enum {
    CVAL_BOOL, CVAL_S8, CVAL_U8, CVAL_S16, CVAL_U16, CVAL_S32, CVAL_U32, CVAL_S64, CVAL_U64, CVAL_F32, CVAL_F64, CVAL_CHAR,
    CVAL_STRING, CVAL_LIST, CVAL_RECORD, CVAL_TUPLE, CVAL_VARIANT, CVAL_ENUM, CVAL_OPTION, CVAL_RESULT, CVAL_FLAGS,
    CVAL_RESOURCE,
};

typedef struct wasmtime_component_val wasmtime_component_val_t;
typedef struct wasmtime_component_valrecord_entry wasmtime_component_valrecord_entry_t;
typedef struct { size_t size; wasmtime_component_val_t *data; } wasmtime_component_vallist_t;
typedef struct { size_t size; wasmtime_component_valrecord_entry_t *data; } wasmtime_component_valrecord_t;
typedef struct { size_t size; wasmtime_component_val_t *data; } wasmtime_component_valtuple_t;
typedef struct { size_t size; wasm_byte_vec_t *data; } wasmtime_component_valflags_t;
typedef struct { wasm_byte_vec_t discriminant; wasmtime_component_val_t *val; } wasmtime_component_valvariant_t;
typedef struct { bool is_ok; wasmtime_component_val_t *val; } wasmtime_component_valresult_t;
typedef struct { size_t size; void *data; } wasmtime_component_valmap_t;
typedef union {
    bool boolean;
    int8_t s8; uint8_t u8; int16_t s16; uint16_t u16; int32_t s32; uint32_t u32; int64_t s64; uint64_t u64;
    float f32; double f64; uint32_t character;
    wasm_byte_vec_t string;
    wasmtime_component_vallist_t list;
    wasmtime_component_valrecord_t record;
    wasmtime_component_valtuple_t tuple;
    wasmtime_component_valvariant_t variant;
    wasm_byte_vec_t enumeration;
    wasmtime_component_val_t *option;
    wasmtime_component_valresult_t result;
    wasmtime_component_valflags_t flags;
    wasmtime_component_valmap_t map;
    void *resource;
} wasmtime_component_valunion_t;
struct wasmtime_component_val { uint8_t kind; wasmtime_component_valunion_t of; };
struct wasmtime_component_valrecord_entry { wasm_byte_vec_t name; wasmtime_component_val_t val; };

/* A host function of a component linker (wasmtime 50's wasmtime_component_func_callback_t, as a function type so that
 * the table below writes the pointer): data, the caller's context, the function's type, arguments, result slots. */
typedef wasmtime_error_t *wasmtime_component_func_callback_fn(void *, wasmtime_context_t *, const wasmtime_component_func_type_t *,
                                                              const wasmtime_component_val_t *, size_t, wasmtime_component_val_t *, size_t);

/* The component functions, resolved together (all or none): X(name, return type, (parameter types)). */
#define WASMLAB_COMPONENT_FUNCTIONS(X) \
    X(wasmtime_component_new, wasmtime_error_t *, (const wasm_engine_t *, const uint8_t *, size_t, wasmtime_component_t **)) \
    X(wasmtime_component_delete, void, (wasmtime_component_t *)) \
    X(wasmtime_component_get_export_index, wasmtime_component_export_index_t *, (const wasmtime_component_t *, const wasmtime_component_export_index_t *, const char *, size_t)) \
    X(wasmtime_component_export_index_delete, void, (wasmtime_component_export_index_t *)) \
    X(wasmtime_component_linker_new, wasmtime_component_linker_t *, (const wasm_engine_t *)) \
    X(wasmtime_component_linker_delete, void, (wasmtime_component_linker_t *)) \
    X(wasmtime_component_linker_add_wasip2, wasmtime_error_t *, (wasmtime_component_linker_t *)) \
    X(wasmtime_component_linker_instantiate, wasmtime_error_t *, (const wasmtime_component_linker_t *, wasmtime_context_t *, const wasmtime_component_t *, wasmtime_component_instance_t *)) \
    X(wasmtime_component_instance_get_func, bool, (const wasmtime_component_instance_t *, wasmtime_context_t *, const wasmtime_component_export_index_t *, wasmtime_component_func_t *)) \
    X(wasmtime_component_func_call, wasmtime_error_t *, (const wasmtime_component_func_t *, wasmtime_context_t *, const wasmtime_component_val_t *, size_t, wasmtime_component_val_t *, size_t)) \
    X(wasmtime_component_func_post_return, wasmtime_error_t *, (const wasmtime_component_func_t *, wasmtime_context_t *)) \
    X(wasmtime_component_val_delete, void, (wasmtime_component_val_t *))

/* The functions a recipe's stubs of component imports need (component_stubs.c), resolved together but apart from the
 * above: a library without them still serves components, only not stubbed ones.  wasmtime_component_val_clone came
 * with wasmtime 39 (absent from 35 and 38, present from 40), as did the function type among the callback's
 * parameters (wasmtime PR #11944), so a library with all of these calls the callback as declared below. */
#define WASMLAB_COMPONENT_STUB_FUNCTIONS(X) \
    X(wasmtime_component_val_clone, void, (const wasmtime_component_val_t *, wasmtime_component_val_t *)) \
    X(wasmtime_component_linker_root, wasmtime_component_linker_instance_t *, (wasmtime_component_linker_t *)) \
    X(wasmtime_component_linker_instance_add_instance, wasmtime_error_t *, (wasmtime_component_linker_instance_t *, const char *, size_t, wasmtime_component_linker_instance_t **)) \
    X(wasmtime_component_linker_instance_add_func, wasmtime_error_t *, (wasmtime_component_linker_instance_t *, const char *, size_t, wasmtime_component_func_callback_fn *, void *, void (*)(void *))) \
    X(wasmtime_component_linker_instance_delete, void, (wasmtime_component_linker_instance_t *))

/* wasi:http for a proxy's instantiate-only request (issue 28), resolved together but apart from the above (a library
 * built without wasmtime's wasi-http feature lacks them and still serves components): the linker gains wasmtime's own
 * wasi:http imports, and each store its wasi-http context, which must come after its WASI context (the C API panics
 * without one).  wasmtime/component/linker.h and wasmtime/store.h. */
#define WASMLAB_COMPONENT_HTTP_FUNCTIONS(X) \
    X(wasmtime_component_linker_add_wasi_http, wasmtime_error_t *, (wasmtime_component_linker_t *)) \
    X(wasmtime_context_set_wasi_http, void, (wasmtime_context_t *))

typedef struct {
#define DECLARE_COMPONENT(name, ret, args) ret (*name) args;
    WASMLAB_COMPONENT_FUNCTIONS(DECLARE_COMPONENT)
    WASMLAB_COMPONENT_STUB_FUNCTIONS(DECLARE_COMPONENT)
    WASMLAB_COMPONENT_HTTP_FUNCTIONS(DECLARE_COMPONENT)
#undef DECLARE_COMPONENT
    int resolved;
    const char *stubs_missing;        /* NULL: the stub functions resolved; else the first one the library lacks */
    const char *http_missing;         /* NULL: the wasi:http functions resolved; else the first one the library lacks */
} ComponentApi;

/* Every component function by name, the required ones first (COMPONENT_REQUIRED_COUNT of them), then the stubs', then
 * wasi:http's (the last COMPONENT_HTTP_COUNT). */
extern const char *const COMPONENT_FUNCTION_NAMES[];
extern const size_t COMPONENT_FUNCTION_COUNT;
extern const size_t COMPONENT_REQUIRED_COUNT;
extern const size_t COMPONENT_HTTP_COUNT;

/* The component functions into `api`: NULL (api->resolved set), or the name of the first required one the library
 * lacks (the library then serves no components).  A stub function it lacks is named in api->stubs_missing, a wasi:http
 * one in api->http_missing. */
const char *component_api_resolve(void *handle, ComponentApi *api);

#endif
