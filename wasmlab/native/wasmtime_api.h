/*
 * The wasmtime C API, as far as the driver uses it (wasmtime 50): the types and the functions, declared as wasmtime's own
 * headers declare them (crates/c-api/include/wasmtime/{store,module,instance,extern,func,val,linker,error,trap}.h, wasi.h
 * and wasm.h).  Nothing is linked against libwasmtime: the functions are resolved by name with dlsym (library.c) into an
 * Api, one table per library.  tests/native/test_header.py reads the two X-macro tables below and checks every row's
 * argument count (and return kind) against wasmtime._bindings, wasmtime-py's ctypes declarations generated from the same
 * headers; module.c's layout() reports the structs' sizes for the same comparison.
 */
#ifndef WASMLAB_WASMTIME_API_H
#define WASMLAB_WASMTIME_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wasm_engine_t wasm_engine_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_module wasmtime_module_t;
typedef struct wasmtime_linker wasmtime_linker_t;
typedef struct wasmtime_instance_pre wasmtime_instance_pre_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasi_config wasi_config_t;

typedef struct { size_t size; char *data; } wasm_byte_vec_t;                   /* wasm.h */
typedef struct wasmtime_instance { uint64_t store_id; size_t __private; } wasmtime_instance_t;
typedef struct wasmtime_func { uint64_t store_id; size_t __private; } wasmtime_func_t;
typedef struct wasmtime_memory {
    struct { uint64_t store_id; size_t __private1; };
    uint32_t __private2;
} wasmtime_memory_t;
typedef struct wasmtime_table {
    struct { uint64_t store_id; size_t __private1; };
    uint32_t __private2;
} wasmtime_table_t;
typedef struct wasmtime_global { uint64_t store_id; size_t __private; } wasmtime_global_t;
typedef union wasmtime_extern_union {
    wasmtime_func_t func;
    wasmtime_global_t global;
    wasmtime_table_t table;
    wasmtime_memory_t memory;
    void *sharedmemory;
} wasmtime_extern_union_t;
typedef struct wasmtime_extern { uint8_t kind; wasmtime_extern_union_t of; } wasmtime_extern_t;
typedef union wasmtime_val_raw {
    int32_t i32; int64_t i64; float f32; double f64; uint8_t v128[16]; uint32_t anyref; uint32_t externref; void *funcref;
} wasmtime_val_raw_t;

#define WASMTIME_EXTERN_FUNC 0
#define WASMTIME_EXTERN_MEMORY 3

/* The functions every library must have: X(name, return type, (parameter types)). */
#define WASMLAB_FUNCTIONS(X) \
    X(wasmtime_store_new, wasmtime_store_t *, (wasm_engine_t *, void *, void (*)(void *))) \
    X(wasmtime_store_context, wasmtime_context_t *, (wasmtime_store_t *)) \
    X(wasmtime_store_delete, void, (wasmtime_store_t *)) \
    X(wasmtime_store_limiter, void, (wasmtime_store_t *, int64_t, int64_t, int64_t, int64_t, int64_t)) \
    X(wasmtime_context_set_fuel, wasmtime_error_t *, (wasmtime_context_t *, uint64_t)) \
    X(wasmtime_context_set_epoch_deadline, void, (wasmtime_context_t *, uint64_t)) \
    X(wasmtime_module_new, wasmtime_error_t *, (wasm_engine_t *, const uint8_t *, size_t, wasmtime_module_t **)) \
    X(wasmtime_module_delete, void, (wasmtime_module_t *)) \
    X(wasmtime_instance_new, wasmtime_error_t *, (wasmtime_context_t *, const wasmtime_module_t *, const wasmtime_extern_t *, size_t, wasmtime_instance_t *, wasm_trap_t **)) \
    X(wasmtime_linker_new, wasmtime_linker_t *, (wasm_engine_t *)) \
    X(wasmtime_linker_delete, void, (wasmtime_linker_t *)) \
    X(wasmtime_linker_instantiate_pre, wasmtime_error_t *, (const wasmtime_linker_t *, const wasmtime_module_t *, wasmtime_instance_pre_t **)) \
    X(wasmtime_instance_pre_instantiate, wasmtime_error_t *, (const wasmtime_instance_pre_t *, wasmtime_context_t *, wasmtime_instance_t *, wasm_trap_t **)) \
    X(wasmtime_instance_pre_delete, void, (wasmtime_instance_pre_t *)) \
    X(wasmtime_instance_export_get, bool, (wasmtime_context_t *, const wasmtime_instance_t *, const char *, size_t, wasmtime_extern_t *)) \
    X(wasmtime_func_call_unchecked, wasmtime_error_t *, (wasmtime_context_t *, const wasmtime_func_t *, wasmtime_val_raw_t *, size_t, wasm_trap_t **)) \
    X(wasmtime_memory_data_size, size_t, (const wasmtime_context_t *, const wasmtime_memory_t *)) \
    X(wasmtime_memory_data, uint8_t *, (const wasmtime_context_t *, const wasmtime_memory_t *)) \
    X(wasmtime_error_message, void, (const wasmtime_error_t *, wasm_byte_vec_t *)) \
    X(wasmtime_error_exit_status, bool, (const wasmtime_error_t *, int *)) \
    X(wasmtime_error_delete, void, (wasmtime_error_t *)) \
    X(wasm_trap_message, void, (const wasm_trap_t *, wasm_byte_vec_t *)) \
    X(wasmtime_trap_code, bool, (const wasm_trap_t *, uint8_t *)) \
    X(wasm_trap_delete, void, (wasm_trap_t *)) \
    X(wasm_byte_vec_delete, void, (wasm_byte_vec_t *))

/* The WASI functions, resolved only when a WASI workload is added (library_resolve_wasi): their prototypes are those of
 * the library wasmtime-py loaded (wasi_config_preopen_dir took directory and file permissions in some releases, a bool
 * in 50), so other releases' libraries never get here.  The last column is the parameter count, reported to Python. */
#define WASMLAB_WASI_FUNCTIONS(X) \
    X(wasi_config_new, wasi_config_t *, (void), 0) \
    X(wasi_config_set_argv, bool, (wasi_config_t *, size_t, const char **), 3) \
    X(wasi_config_set_env, bool, (wasi_config_t *, size_t, const char **, const char **), 4) \
    X(wasi_config_set_stdin_file, bool, (wasi_config_t *, const char *), 2) \
    X(wasi_config_set_stdout_file, bool, (wasi_config_t *, const char *), 2) \
    X(wasi_config_set_stderr_file, bool, (wasi_config_t *, const char *), 2) \
    X(wasi_config_preopen_dir, bool, (wasi_config_t *, const char *, const char *, bool), 4) \
    X(wasi_config_delete, void, (wasi_config_t *), 1) \
    X(wasmtime_context_set_wasi, wasmtime_error_t *, (wasmtime_context_t *, wasi_config_t *), 2) \
    X(wasmtime_linker_instantiate, wasmtime_error_t *, (const wasmtime_linker_t *, wasmtime_context_t *, const wasmtime_module_t *, wasmtime_instance_t *, wasm_trap_t **), 5)

/* One library's functions: the core ones, then the WASI ones (NULL until resolved). */
typedef struct {
#define DECLARE(name, ret, args) ret (*name) args;
    WASMLAB_FUNCTIONS(DECLARE)
#undef DECLARE
#define DECLARE_WASI(name, ret, args, n) ret (*name) args;
    WASMLAB_WASI_FUNCTIONS(DECLARE_WASI)
#undef DECLARE_WASI
    int wasi_resolved;
} Api;

#endif
