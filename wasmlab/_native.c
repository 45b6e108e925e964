/*
 * wasmlab._native: the request loop in C, over the libwasmtime that wasmtime-py loaded.
 *
 * Nothing is linked against libwasmtime: a Library resolves the functions it needs with dlsym() on a
 * handle it is given (wasmtime-py's own, so engines and modules made through wasmtime-py can be used
 * here) or on a library it opens itself, and names the first function the library lacks.  Only the
 * prototypes and structs the loop uses are declared below, as wasmtime 50's headers declare them
 * (crates/c-api/include/wasmtime/{store,module,instance,extern,func,val,linker,error,trap}.h and wasm.h);
 * layout() reports their sizes so that a test compares them with wasmtime-py's ctypes declarations.
 *
 * A Driver serves blocks of requests with the GIL released.  Each request does the whole job, like the
 * lab's Python call paths: get the compiled module (compiled per request without a cache, or looked up
 * in a small hash table keyed by the module's SHA-256), a new store with the per-store limits, instantiate
 * (from an InstancePre when asked), look the export up, call it, check its result, delete the store.  Each
 * request's nanoseconds (CLOCK_MONOTONIC, the clock of Python's perf_counter_ns) and outcome go to a
 * buffer the caller owns; in phased mode the same loop also writes a stamp at each phase boundary.
 */
#define _GNU_SOURCE /* memmem, nftw */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- The wasmtime C API, as far as the loop uses it (wasmtime 50) ---- */

typedef struct wasm_engine_t wasm_engine_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_module wasmtime_module_t;
typedef struct wasmtime_linker wasmtime_linker_t;
typedef struct wasmtime_instance_pre wasmtime_instance_pre_t;
typedef struct wasmtime_error wasmtime_error_t;

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

/* The functions, resolved by name: one table per Library. */
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

typedef struct wasi_config wasi_config_t;

/* The WASI functions, resolved only when a WASI workload is added (Library.enable_wasi): their prototypes are those of
 * the library wasmtime-py loaded (wasi_config_preopen_dir took directory and file permissions in some releases, a
 * bool in 50), so other releases' libraries never get here.  NARGS(...) below is checked against wasmtime._bindings. */
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

typedef struct {
#define DECLARE(name, ret, args) ret (*name) args;
    WASMLAB_FUNCTIONS(DECLARE)
#undef DECLARE
#define DECLARE_WASI(name, ret, args, n) ret (*name) args;
    WASMLAB_WASI_FUNCTIONS(DECLARE_WASI)
#undef DECLARE_WASI
    int wasi_resolved;
} Api;

static const char *const WASI_FUNCTION_NAMES[] = {
#define NAME_WASI(name, ret, args, n) #name,
    WASMLAB_WASI_FUNCTIONS(NAME_WASI)
#undef NAME_WASI
};
static const int WASI_FUNCTION_NARGS[] = {
#define NARGS_WASI(name, ret, args, n) n,
    WASMLAB_WASI_FUNCTIONS(NARGS_WASI)
#undef NARGS_WASI
};

static const char *const FUNCTION_NAMES[] = {
#define NAME(name, ret, args) #name,
    WASMLAB_FUNCTIONS(NAME)
#undef NAME
};

/* The driver's clock: CLOCK_MONOTONIC, the clock of Python's time.perf_counter_ns on Linux. */
static inline int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* ---- Library ---- */

typedef struct {
    PyObject_HEAD
    void *handle;
    int owned; /* opened here (dlclose on dealloc) or borrowed from wasmtime-py */
    Api api;
    PyObject *path;
} Library;

static PyTypeObject LibraryType;

static int library_resolve(Library *self) {
    void **slots = (void **)&self->api;
    for (size_t i = 0; i < sizeof(FUNCTION_NAMES) / sizeof(FUNCTION_NAMES[0]); i++) {
        void *symbol = dlsym(self->handle, FUNCTION_NAMES[i]);
        if (symbol == NULL) {
            PyErr_Format(PyExc_LookupError, "libwasmtime %S has no function %s (needed by the native call path)",
                         self->path, FUNCTION_NAMES[i]);
            return -1;
        }
        slots[i] = symbol;
    }
    return 0;
}

static int Library_init(Library *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"handle", "path", NULL};
    unsigned long long handle = 0;
    PyObject *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|KO", keywords, &handle, &path))
        return -1;
    if ((handle == 0) == (path == NULL || path == Py_None)) {
        PyErr_SetString(PyExc_TypeError, "Library() takes a dlopen handle or a path, not both");
        return -1;
    }
    if (handle) {
        self->handle = (void *)(uintptr_t)handle;
        self->owned = 0;
        self->path = PyUnicode_FromString("(wasmtime-py's)");
    } else {
        PyObject *encoded = PyUnicode_EncodeFSDefault(path);
        if (encoded == NULL)
            return -1;
        /* RTLD_LOCAL: another release's library must not lend its symbols to anything else. */
        self->handle = dlopen(PyBytes_AS_STRING(encoded), RTLD_NOW | RTLD_LOCAL);
        Py_DECREF(encoded);
        if (self->handle == NULL) {
            PyErr_Format(PyExc_OSError, "cannot open libwasmtime %S: %s", path, dlerror());
            return -1;
        }
        self->owned = 1;
        Py_INCREF(path);
        self->path = path;
    }
    return library_resolve(self);
}

static void Library_dealloc(Library *self) {
    /* A library opened here stays mapped: modules and engines made from it may outlive this object. */
    Py_XDECREF(self->path);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* enable_wasi(): resolve the WASI functions (a LookupError naming one the library lacks). */
static PyObject *Library_enable_wasi(Library *self, PyObject *unused) {
    if (self->api.wasi_resolved)
        Py_RETURN_NONE;
    void **slots = (void **)&self->api.wasi_config_new;
    for (size_t i = 0; i < sizeof(WASI_FUNCTION_NAMES) / sizeof(WASI_FUNCTION_NAMES[0]); i++) {
        void *symbol = dlsym(self->handle, WASI_FUNCTION_NAMES[i]);
        if (symbol == NULL) {
            PyErr_Format(PyExc_LookupError, "libwasmtime %S has no function %s (needed for WASI on the native call path)",
                         self->path, WASI_FUNCTION_NAMES[i]);
            return NULL;
        }
        slots[i] = symbol;
    }
    self->api.wasi_resolved = 1;
    Py_RETURN_NONE;
}

/* wasi_functions() -> {name: number of parameters declared}, to check against wasmtime._bindings. */
static PyObject *Library_wasi_functions(PyObject *cls, PyObject *unused) {
    PyObject *out = PyDict_New();
    for (size_t i = 0; out != NULL && i < sizeof(WASI_FUNCTION_NAMES) / sizeof(WASI_FUNCTION_NAMES[0]); i++) {
        PyObject *n = PyLong_FromLong(WASI_FUNCTION_NARGS[i]);
        if (n == NULL || PyDict_SetItemString(out, WASI_FUNCTION_NAMES[i], n) < 0) { Py_XDECREF(n); Py_DECREF(out); return NULL; }
        Py_DECREF(n);
    }
    return out;
}

static PyObject *Library_functions(PyObject *cls, PyObject *unused) {
    PyObject *names = PyTuple_New(sizeof(FUNCTION_NAMES) / sizeof(FUNCTION_NAMES[0]));
    if (names == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(FUNCTION_NAMES) / sizeof(FUNCTION_NAMES[0]); i++)
        PyTuple_SET_ITEM(names, i, PyUnicode_FromString(FUNCTION_NAMES[i]));
    return names;
}

static PyMethodDef Library_methods[] = {
    {"functions", (PyCFunction)Library_functions, METH_NOARGS | METH_CLASS, "The C API functions the driver resolves, by name."},
    {"wasi_functions", (PyCFunction)Library_wasi_functions, METH_NOARGS | METH_CLASS, "The WASI functions and their declared arity."},
    {"enable_wasi", (PyCFunction)Library_enable_wasi, METH_NOARGS, "Resolve the WASI functions (wasmtime-py's library only)."},
    {NULL},
};

static PyTypeObject LibraryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasmlab._native.Library",
    .tp_basicsize = sizeof(Library),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The wasmtime C API functions the driver calls, resolved from one libwasmtime.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Library_init,
    .tp_dealloc = (destructor)Library_dealloc,
    .tp_methods = Library_methods,
};

/* ---- Engine: an engine made in a Library of its own (another release's), for the driver ---- */

typedef struct {
    PyObject_HEAD
    Library *library;
    wasm_engine_t *engine;
    void (*engine_delete)(wasm_engine_t *);
} Engine;

static PyTypeObject EngineType;

static void *optional(Library *library, const char *name) {
    void *symbol = dlsym(library->handle, name);
    if (symbol == NULL)
        PyErr_Format(PyExc_LookupError, "libwasmtime %S has no function %s", library->path, name);
    return symbol;
}

/* Engine(library, pooling=None, features=None): on-demand, or pooling with each knob of the dict set through
 * wasmtime_pooling_allocation_config_<knob>_set (every setter takes the config and one integer: uint32_t or
 * size_t; passed as 64 bits, which the calling conventions of x86-64 and AArch64 make the same in a register).
 * features: a dict of WebAssembly proposal -> bool, each set through wasmtime_config_wasm_<proposal>_set (e.g.
 * exceptions, which releases before 46 leave off and before 40 cannot turn on).
 * A function the release lacks (the pooling ones before 35) is a LookupError naming it. */
static int Engine_init(Engine *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"library", "pooling", "features", NULL};
    PyObject *library, *pooling = Py_None, *features = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|OO", keywords, &LibraryType, &library, &pooling, &features))
        return -1;
    if (features != Py_None) {
        if (!PyDict_Check(features)) {
            PyErr_SetString(PyExc_TypeError, "features must be a dict of proposal -> bool");
            return -1;
        }
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(features, &pos, &key, &value)) {
            char name[160];
            snprintf(name, sizeof name, "wasmtime_config_wasm_%s_set", PyUnicode_AsUTF8(key));
            if (!optional((Library *)library, name))
                return -1;
        }
    }
    Library *lib = (Library *)library;
    void *(*config_new)(void) = optional(lib, "wasm_config_new");
    wasm_engine_t *(*engine_new)(void *) = optional(lib, "wasm_engine_new_with_config");
    void (*engine_delete)(wasm_engine_t *) = optional(lib, "wasm_engine_delete");
    if (!config_new || !engine_new || !engine_delete)
        return -1;
    void *(*pool_new)(void) = NULL;
    void (*pool_delete)(void *) = NULL;
    void (*strategy_set)(void *, const void *) = NULL;
    if (pooling != Py_None) {
        if (!PyDict_Check(pooling)) {
            PyErr_SetString(PyExc_TypeError, "pooling must be a dict of knob -> integer");
            return -1;
        }
        pool_new = optional(lib, "wasmtime_pooling_allocation_config_new");
        pool_delete = pool_new ? optional(lib, "wasmtime_pooling_allocation_config_delete") : NULL;
        strategy_set = pool_delete ? optional(lib, "wasmtime_pooling_allocation_strategy_set") : NULL;
        if (!strategy_set)
            return -1;
        /* Resolve every setter before making anything, so that a missing one leaks nothing. */
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(pooling, &pos, &key, &value)) {
            char name[160];
            snprintf(name, sizeof name, "wasmtime_pooling_allocation_config_%s_set", PyUnicode_AsUTF8(key));
            if (!optional(lib, name))
                return -1;
        }
    }
    void *config = config_new();
    if (features != Py_None) {
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(features, &pos, &key, &value)) {
            char name[160];
            snprintf(name, sizeof name, "wasmtime_config_wasm_%s_set", PyUnicode_AsUTF8(key));
            void (*set)(void *, bool) = (void (*)(void *, bool))dlsym(lib->handle, name);
            set(config, PyObject_IsTrue(value) == 1);
        }
    }
    if (pooling != Py_None) {
        void *pool = pool_new();
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(pooling, &pos, &key, &value)) {
            char name[160];
            snprintf(name, sizeof name, "wasmtime_pooling_allocation_config_%s_set", PyUnicode_AsUTF8(key));
            void (*set)(void *, uint64_t) = (void (*)(void *, uint64_t))dlsym(lib->handle, name);
            unsigned long long v = PyLong_AsUnsignedLongLong(value);
            if (PyErr_Occurred()) {
                pool_delete(pool);
                return -1;
            }
            set(pool, (uint64_t)v);
        }
        strategy_set(config, pool);
        pool_delete(pool);
    }
    /* A pool that cannot be reserved aborts inside wasmtime: callers run this in a child process. */
    self->engine = engine_new(config);
    if (self->engine == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "wasm_engine_new_with_config returned no engine");
        return -1;
    }
    Py_INCREF(library);
    self->library = lib;
    self->engine_delete = engine_delete;
    return 0;
}

static void Engine_dealloc(Engine *self) {
    if (self->engine != NULL)
        self->engine_delete(self->engine);
    Py_XDECREF(self->library);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Engine_address(Engine *self, void *closure) {
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)self->engine);
}

/* compile(wasm, repeats) -> [ns, ...]: wasmtime_module_new on this engine, `repeats` times (each module deleted),
 * the GIL released; a module that does not compile is a ValueError with wasmtime's message. */
static PyObject *Engine_compile(Engine *self, PyObject *args) {
    Py_buffer wasm;
    int repeats = 1;
    if (!PyArg_ParseTuple(args, "y*|i", &wasm, &repeats))
        return NULL;
    void *(*module_new)(wasm_engine_t *, const uint8_t *, size_t, wasmtime_module_t **) = optional(self->library, "wasmtime_module_new");
    void (*module_delete)(wasmtime_module_t *) = optional(self->library, "wasmtime_module_delete");
    if (!module_new || !module_delete || repeats < 1) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "repeats = %d; allowed: >= 1", repeats);
        PyBuffer_Release(&wasm);
        return NULL;
    }
    int64_t *times = calloc((size_t)repeats, sizeof(int64_t));
    wasmtime_error_t *err = NULL;
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < repeats && err == NULL; i++) {
        wasmtime_module_t *module = NULL;
        int64_t start = now_ns();
        err = (wasmtime_error_t *)module_new(self->engine, (const uint8_t *)wasm.buf, (size_t)wasm.len, &module);
        times[i] = now_ns() - start;
        if (err == NULL)
            module_delete(module);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&wasm);
    PyObject *result = NULL;
    if (err != NULL) {
        wasm_byte_vec_t message = {0, NULL};
        self->library->api.wasmtime_error_message(err, &message);
        /* PyErr_Format has no %.*s: the message becomes a str first (it is not NUL-terminated). */
        PyObject *text = PyUnicode_DecodeUTF8(message.data ? message.data : "", (Py_ssize_t)message.size, "replace");
        if (text != NULL) {
            PyErr_Format(PyExc_ValueError, "the module does not compile: %U", text);
            Py_DECREF(text);
        }
        self->library->api.wasm_byte_vec_delete(&message);
        self->library->api.wasmtime_error_delete(err);
    } else {
        result = PyList_New(repeats);
        for (int i = 0; result && i < repeats; i++)
            PyList_SET_ITEM(result, i, PyLong_FromLongLong(times[i]));
    }
    free(times);
    return result;
}

static PyMethodDef Engine_methods[] = {
    {"compile", (PyCFunction)Engine_compile, METH_VARARGS, "Time wasmtime_module_new of a module on this engine: a list of ns."},
    {NULL},
};

static PyGetSetDef Engine_getset[] = {
    {"address", (getter)Engine_address, NULL, "The wasm_engine_t pointer, for a Driver.", NULL},
    {NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasmlab._native.Engine",
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An engine made through one Library's own functions (on-demand, or pooling with the given knobs).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Engine_init,
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_getset = Engine_getset,
    .tp_methods = Engine_methods,
};

/* ---- Driver ---- */

enum { OUT_OK = 0, OUT_TRAP = 1, OUT_EXIT = 2, OUT_ERROR = 3, OUT_MISMATCH = 4, OUT_NO_EXPORT = 5, OUT_COMPILE_ERROR = 6 };
enum { CHECK_NONE = 0, CHECK_EXPECTED = 1, CHECK_FIRST = 2 };
enum { KIND_NONE = 0, KIND_I32 = 1, KIND_I64 = 2 };
#define MAX_SLOTS 16
#define RECORD_WORDS 5    /* per request: ns, outcome, detail (result, trap code or exit status), memory bytes, start lag */
#define STAMPS 8          /* start, then the end of each of the lab's seven phases */
#define STEP_STAMPS 65    /* a recipe's steps in phased mode: start, then after each of its first 64 steps */
#define MESSAGE_BYTES 512

/* A request recipe's steps (wasmlab.workloads.recipe), flattened by wasmlab.host.callpaths.native into operations
 * on integer values: calls with named results, writes and reads of guest memory, u32 loads and stores. */
enum { OP_CALL = 1, OP_WRITE = 2, OP_READ = 3, OP_LOAD = 4, OP_STORE32 = 5, OP_STAMP = 6 }; /* OP_STAMP: a step ends */
#define MAX_VALUES 256

typedef struct { int slot; int64_t offset; } Operand; /* the value in `slot` plus `offset`; slot < 0: the literal `offset` */

typedef struct {
    int op;
    char *name;            /* OP_CALL: the export */
    size_t name_len;
    int nargs;
    Operand args[MAX_SLOTS];
    uint8_t arg_kinds[MAX_SLOTS];
    uint8_t result_kind;
    size_t nslots;
    int dst;               /* OP_CALL, OP_LOAD: the value slot written, -1 none */
    int top;               /* OP_CALL: a step of its own (its result is the request's), not a nested call */
    Operand at, value;     /* the address; OP_READ: the length; OP_STORE32: the value */
    uint8_t *data;         /* OP_WRITE */
    size_t len;
    int read;              /* OP_READ: which read */
} Op;

typedef struct {
    Op *ops;
    int nops;
    char *memory;          /* the exported memory the steps use */
    size_t memory_len;
    int nreads;
    uint8_t **first;       /* the first request's reads: every later request's must equal them byte for byte */
    size_t *first_len;
    int learned;
} Program;

static void program_free(Program *p);

typedef struct {
    uint8_t *wasm;
    size_t wasm_len;
    uint8_t sha256[32];
    char *entry;
    size_t entry_len;
    size_t nslots;
    int nargs;
    int64_t args[MAX_SLOTS];
    uint8_t arg_kinds[MAX_SLOTS];
    uint8_t result_kind;
    int check;
    int learned;
    int64_t expected;
    Program *program;      /* a recipe's steps instead of one call of `entry`, or NULL */
    int linked;            /* instantiated through the driver's linker (WASI, host functions) */
    struct WasiSpec *wasi; /* a WASI context per request, or NULL */
} Workload;

/* What a WASI request leaves behind and later requests must repeat byte for byte: stdout, stderr, and the files it
 * wrote into its writable directories (one listing of them all, see snapshot_dir). */
enum { OUT_STDOUT, OUT_STDERR, OUT_FILES, OUTPUTS };

/* A WASI guest's context, built for every request: argv, environment, stdin from a file, stdout and stderr to files
 * (read back after the store is gone and compared with the first request's, which Python checks), read-only
 * preopened directories, writable ones made fresh for every request (empty, or a copy of a host directory), and the
 * exit status that means success. */
typedef struct WasiSpec {
    int argc;
    char **argv;
    int envc;
    char **env_names, **env_values;
    char *stdin_path, *stdout_path, *stderr_path;
    int npreopens;
    char **hosts, **guests;
    int nwritable;
    char **wfolders;      /* where this driver's requests get each writable directory (made anew every request) */
    char **wsources;      /* what each is a copy of; an empty string for an empty directory */
    char **wguests;       /* its path in the guest */
    int expected_exit;
    int compare_output;   /* each request's outputs must equal the first request's */
    int learned;
    uint8_t *first_out[OUTPUTS];
    size_t first_len[OUTPUTS];
} WasiSpec;

/* A NULL-terminated array of strings (copy_strings') and the strings in it; NULL is fine.  Freed up to its NULL, not
 * by a count: set_wasi frees a spec whose lists did not pair up, and a count would then run past a shorter list. */
static void free_strings(char **list) {
    if (list == NULL)
        return;
    for (char **item = list; *item != NULL; item++) free(*item);
    free(list);
}

static void wasi_free(WasiSpec *w) {
    if (w == NULL)
        return;
    char **lists[] = {w->argv, w->env_names, w->env_values, w->hosts, w->guests, w->wfolders, w->wsources, w->wguests};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) free_strings(lists[i]);
    free(w->stdin_path); free(w->stdout_path); free(w->stderr_path);
    for (int k = 0; k < OUTPUTS; k++) free(w->first_out[k]);
    free(w);
}

typedef struct {
    uint8_t sha256[32];
    wasmtime_module_t *module;
    wasmtime_instance_pre_t *pre;
    uint64_t last_used;
    int next; /* the next entry in its bucket's chain, -1 at its end */
    int used;
} Entry;

typedef struct {
    PyObject_HEAD
    Library *library;
    PyObject *engine_owner; /* an Engine object whose engine this driver uses, kept alive while the driver is */
    wasm_engine_t *engine;
    wasmtime_linker_t *linker;
    int own_linker;
    int pre;
    /* The cache: `capacity` entries chained from `nbuckets` buckets; 0 means no cache. */
    int capacity;
    int nbuckets;
    int *buckets;
    Entry *entries;
    int count;
    uint64_t tick;
    /* Per-store limits: fuel < 0 and ticks == 0 mean none; a limiter when `limited`. */
    int64_t fuel;
    uint64_t epoch_ticks;
    int limited;
    int64_t limiter[5];
    /* Pool exhaustion: fail (wait_ns < 0) or retry for at most wait_ns. */
    int64_t wait_ns;
    Workload *workloads;
    int nworkloads;
    /* Counters since the last take_stats(). */
    uint64_t hits, misses, evictions, compile_ns, waits, wait_total_ns;
    char first_message[MESSAGE_BYTES];
    int has_message;
    int busy;
    /* The current request's step stamps (STEP_STAMPS words) in a phased block that asked for them, else NULL. */
    int64_t *steps;
} Driver;

static void remember_bytes(Driver *d, const char *prefix, wasm_byte_vec_t *message) {
    if (d->has_message)
        return;
    int length = (int)(message->size < MESSAGE_BYTES - 64 ? message->size : MESSAGE_BYTES - 64);
    snprintf(d->first_message, MESSAGE_BYTES, "%s%.*s", prefix, length, message->data ? message->data : "");
    d->has_message = 1;
}

enum { ERROR_OTHER = 0, ERROR_POOL_EXHAUSTED = 1, ERROR_MEMORY_LIMIT = 2 };

static int contains(const wasm_byte_vec_t *message, const char *text) {
    return message->data != NULL && memmem(message->data, message->size, text, strlen(text)) != NULL;
}

/* What kind of error it is, by wasmtime's message (as outcomes.classify reads it in Python); the message is
 * kept if it is the block's first failure and `keep`; the error is not deleted. */
static int error_kind(Driver *d, wasmtime_error_t *err, const char *prefix, int keep) {
    const Api *api = &d->library->api;
    wasm_byte_vec_t message = {0, NULL};
    api->wasmtime_error_message(err, &message);
    int kind = contains(&message, "maximum concurrent limit") ? ERROR_POOL_EXHAUSTED
             : contains(&message, "memory") && (contains(&message, "limit") || contains(&message, "exceeds")) ? ERROR_MEMORY_LIMIT
             : ERROR_OTHER;
    if (keep)
        remember_bytes(d, prefix, &message);
    api->wasm_byte_vec_delete(&message);
    return kind;
}

/* Keeps the error's message (if first), deletes the error, and returns its kind. */
static int drop_error(Driver *d, wasmtime_error_t *err, const char *prefix) {
    int kind = error_kind(d, err, prefix, 1);
    d->library->api.wasmtime_error_delete(err);
    return kind;
}

static void drop_trap(Driver *d, wasm_trap_t *trap, int64_t *code) {
    const Api *api = &d->library->api;
    uint32_t value = 0; /* wasmtime_trap_code_t is a uint8_t; a wider slot costs nothing and fears no older release */
    *code = api->wasmtime_trap_code(trap, (uint8_t *)&value) ? (int64_t)(value & 0xff) : -1;
    wasm_byte_vec_t message = {0, NULL};
    api->wasm_trap_message(trap, &message);
    remember_bytes(d, "Trap: ", &message);
    api->wasm_byte_vec_delete(&message);
    api->wasm_trap_delete(trap);
}

static uint64_t bucket_of(const Driver *d, const uint8_t *sha) {
    uint64_t h;
    memcpy(&h, sha, sizeof h); /* a SHA-256 is already uniformly spread */
    return h & (uint64_t)(d->nbuckets - 1);
}

static Entry *cache_find(Driver *d, const uint8_t *sha) {
    for (int i = d->buckets[bucket_of(d, sha)]; i >= 0; i = d->entries[i].next)
        if (memcmp(d->entries[i].sha256, sha, 32) == 0)
            return &d->entries[i];
    return NULL;
}

static void release(Driver *d, wasmtime_module_t *module, wasmtime_instance_pre_t *pre) {
    if (pre != NULL)
        d->library->api.wasmtime_instance_pre_delete(pre);
    if (module != NULL)
        d->library->api.wasmtime_module_delete(module);
}

static void cache_unlink(Driver *d, int index) {
    int *link = &d->buckets[bucket_of(d, d->entries[index].sha256)];
    while (*link != index)
        link = &d->entries[*link].next;
    *link = d->entries[index].next;
}

/* Keep a compiled module; the least recently used one makes room when the cache is full. */
static void cache_insert(Driver *d, const uint8_t *sha, wasmtime_module_t *module, wasmtime_instance_pre_t *pre) {
    int slot = -1;
    if (d->count < d->capacity) {
        for (int i = 0; i < d->capacity; i++)
            if (!d->entries[i].used) { slot = i; break; }
        d->count++;
    } else {
        uint64_t oldest = UINT64_MAX;
        for (int i = 0; i < d->capacity; i++)
            if (d->entries[i].last_used < oldest) { oldest = d->entries[i].last_used; slot = i; }
        cache_unlink(d, slot);
        release(d, d->entries[slot].module, d->entries[slot].pre);
        d->evictions++;
    }
    Entry *e = &d->entries[slot];
    memcpy(e->sha256, sha, 32);
    e->module = module;
    e->pre = pre;
    e->used = 1;
    e->last_used = ++d->tick;
    uint64_t b = bucket_of(d, sha);
    e->next = d->buckets[b];
    d->buckets[b] = slot;
}

static int compile(Driver *d, const Workload *w, wasmtime_module_t **module, wasmtime_instance_pre_t **pre) {
    const Api *api = &d->library->api;
    int64_t start = now_ns();
    *pre = NULL;
    wasmtime_error_t *err = api->wasmtime_module_new(d->engine, w->wasm, w->wasm_len, module);
    if (err == NULL && d->pre) {
        err = api->wasmtime_linker_instantiate_pre(d->linker, *module, pre);
        if (err != NULL) {
            api->wasmtime_module_delete(*module);
            *module = NULL;
        }
    }
    d->compile_ns += (uint64_t)(now_ns() - start);
    if (err != NULL) {
        (void)drop_error(d, err, "CompileError: ");
        return -1;
    }
    return 0;
}

static void remember_text(Driver *d, const char *text);

static wasmtime_error_t *instantiate(Driver *d, Workload *w, wasmtime_context_t *context, wasmtime_module_t *module,
                                     wasmtime_instance_pre_t *pre, wasmtime_instance_t *instance, wasm_trap_t **trap) {
    const Api *api = &d->library->api;
    if (pre != NULL)
        return api->wasmtime_instance_pre_instantiate(pre, context, instance, trap);
    if (w->linked)
        return api->wasmtime_linker_instantiate(d->linker, context, module, instance, trap);
    return api->wasmtime_instance_new(context, module, NULL, 0, instance, trap);
}

/* The whole of a file (stdout, stderr or a written file of the request that just ended); NULL and *len 0 when it is empty or missing. */
static uint8_t *read_file(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *data = NULL;
    size_t cap = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *grown = realloc(data, cap);
            if (grown == NULL) { free(data); fclose(f); *len = 0; return NULL; }
            data = grown;
        }
        size_t got = fread(data + *len, 1, cap - *len, f);
        if (got == 0) break;
        *len += got;
    }
    fclose(f);
    return data;
}

/* The file tree a writable directory starts each request with.  Every helper returns 0, or -1 with errno set. */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

/* `path` and everything under it gone (nothing there is fine). */
static int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A copy of the regular file `from` at `to`, with its permission bits. */
static int copy_file(const char *from, const char *to, mode_t mode) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
    if (out < 0) {
        int e = errno;
        close(in);
        errno = e;
        return -1;
    }
    char chunk[65536];
    ssize_t got;
    int status = 0;
    while (status == 0 && (got = read(in, chunk, sizeof chunk)) != 0) {
        if (got < 0) {
            if (errno != EINTR) status = -1;
            continue;
        }
        for (ssize_t done = 0; status == 0 && done < got;) {
            ssize_t put = write(out, chunk + done, (size_t)(got - done));
            if (put >= 0) done += put;
            else if (errno != EINTR) status = -1;
        }
    }
    int e = errno;
    close(in);
    if (close(out) != 0 && status == 0) { status = -1; e = errno; }
    errno = e;
    return status;
}

/* `to` made as a copy of the directory `from`: its files, subdirectories and symbolic links (anything else refused). */
static int copy_tree(const char *from, const char *to) {
    struct stat st;
    if (stat(from, &st) != 0 || mkdir(to, st.st_mode & 07777) != 0)
        return -1;
    DIR *dir = opendir(from);
    if (dir == NULL)
        return -1;
    int status = 0;
    struct dirent *entry;
    char source[PATH_MAX], target[PATH_MAX];
    while (status == 0 && (entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (snprintf(source, sizeof source, "%s/%s", from, entry->d_name) >= (int)sizeof source ||
            snprintf(target, sizeof target, "%s/%s", to, entry->d_name) >= (int)sizeof target) {
            errno = ENAMETOOLONG;
            status = -1;
        } else if (lstat(source, &st) != 0) {
            status = -1;
        } else if (S_ISDIR(st.st_mode)) {
            status = copy_tree(source, target);
        } else if (S_ISREG(st.st_mode)) {
            status = copy_file(source, target, st.st_mode);
        } else if (S_ISLNK(st.st_mode)) {
            char link[PATH_MAX];
            ssize_t n = readlink(source, link, sizeof link - 1);
            if (n < 0) {
                status = -1;
            } else {
                link[n] = 0;
                status = symlink(link, target);
            }
        } else {
            errno = ENOTSUP;
            status = -1;
        }
    }
    int e = errno;
    closedir(dir);
    errno = e;
    return status;
}

/* A request's writable directory as it must start: empty (`source` "") or a copy of `source`, whatever the last
 * request left there gone first. */
static int fresh_dir(const char *folder, const char *source) {
    if (remove_tree(folder) != 0)
        return -1;
    return source[0] ? copy_tree(source, folder) : mkdir(folder, 0700);
}

/* A growing byte buffer (the listing of a request's written files). */
typedef struct {
    uint8_t *data;
    size_t len, cap;
    int failed;
} Buffer;

static void buffer_add(Buffer *b, const void *data, size_t n) {
    if (b->failed || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (grown == NULL) { b->failed = 1; return; }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);  /* not alphasort: strcoll would make the order depend on the locale */
}

/* Everything under `host` appended to `b` as records in name order, depth first, each: a type byte ('d' directory,
 * 'f' file, 'l' symbolic link), the guest path ending in NUL, a uint64 length (native order) and that many bytes (the
 * file's contents or the link's target; none for a directory).  Python reads the same records (native.parse_files). */
static int snapshot_dir(Buffer *b, const char *host, const char *guest) {
    struct dirent **names;
    int n = scandir(host, &names, NULL, by_name);
    if (n < 0)
        return -1;
    int status = 0;
    char path[PATH_MAX], inside[PATH_MAX];
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        struct stat st;
        if (status != 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", host, name) >= (int)sizeof path ||
            snprintf(inside, sizeof inside, "%s/%s", strcmp(guest, "/") == 0 ? "" : guest, name) >= (int)sizeof inside) {
            errno = ENAMETOOLONG;
            status = -1;
            continue;
        }
        if (lstat(path, &st) != 0) { status = -1; continue; }
        char type = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'f';
        uint8_t *contents = NULL;
        size_t len = 0;
        char link[PATH_MAX];
        if (type == 'f') {
            contents = read_file(path, &len);
            if (contents == NULL && st.st_size > 0) { status = -1; continue; }
        } else if (type == 'l') {
            ssize_t got = readlink(path, link, sizeof link);
            if (got < 0) { status = -1; continue; }
            contents = (uint8_t *)link;
            len = (size_t)got;
        }
        uint64_t size = len;
        buffer_add(b, &type, 1);
        buffer_add(b, inside, strlen(inside) + 1);
        buffer_add(b, &size, sizeof size);
        buffer_add(b, contents, len);
        if (type == 'f') free(contents);
        if (type == 'd') status = snapshot_dir(b, path, inside);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return b->failed ? (errno = ENOMEM, -1) : status;
}

/* One record of a listing at `*at` (advanced past it): 1, or 0 at the end. */
static int next_record(const uint8_t *data, size_t len, size_t *at, char *type, const char **path, uint64_t *size, const uint8_t **contents) {
    if (*at >= len)
        return 0;
    *type = (char)data[*at];
    *path = (const char *)data + *at + 1;
    size_t after = *at + 1 + strlen(*path) + 1;
    memcpy(size, data + after, sizeof *size);
    *contents = data + after + sizeof *size;
    *at = after + sizeof *size + *size;
    return 1;
}

/* Where this request's listing `now` first differs from the first request's `first`, in words. */
static void describe_difference(const uint8_t *now, size_t now_len, const uint8_t *first, size_t first_len, char *out, size_t size) {
    size_t a = 0, b = 0;
    for (;;) {
        char ta, tb;
        const char *pa, *pb;
        uint64_t la, lb;
        const uint8_t *ca, *cb;
        int more_a = next_record(now, now_len, &a, &ta, &pa, &la, &ca), more_b = next_record(first, first_len, &b, &tb, &pb, &lb, &cb);
        if (!more_a && !more_b) {
            snprintf(out, size, "the written files differ from the first request's");
        } else if (!more_b) {
            snprintf(out, size, "the request wrote %s, which the first request did not", pa);
        } else if (!more_a) {
            snprintf(out, size, "the request did not write %s, which the first request did", pb);
        } else if (strcmp(pa, pb) != 0) {
            snprintf(out, size, "the written files differ from the first request's: %s where the first request has %s", pa, pb);
        } else if (ta != tb || la != lb || memcmp(ca, cb, la) != 0) {
            snprintf(out, size, "the written %s (%llu bytes) differs from the first request's (%llu bytes)", pa,
                     (unsigned long long)la, (unsigned long long)lb);
        } else {
            continue;
        }
        return;
    }
}

/* This request's WASI context into the store (the context owns the config from then on), its writable directories
 * made fresh first: 0, or -1 with what went wrong in `problem`. */
static int set_wasi(Driver *d, WasiSpec *spec, wasmtime_context_t *context, char *problem, size_t size) {
    const Api *api = &d->library->api;
    for (int i = 0; i < spec->nwritable; i++) {
        if (fresh_dir(spec->wfolders[i], spec->wsources[i]) != 0) {
            snprintf(problem, size, "the writable directory %s could not be made fresh%s%s: %s", spec->wguests[i],
                     spec->wsources[i][0] ? " from " : "", spec->wsources[i], strerror(errno));
            return -1;
        }
    }
    wasi_config_t *config = api->wasi_config_new();
    if (!api->wasi_config_set_argv(config, (size_t)spec->argc, (const char **)spec->argv) ||
        (spec->envc && !api->wasi_config_set_env(config, (size_t)spec->envc, (const char **)spec->env_names,
                                                 (const char **)spec->env_values)) ||
        (spec->stdin_path && !api->wasi_config_set_stdin_file(config, spec->stdin_path)) ||
        !api->wasi_config_set_stdout_file(config, spec->stdout_path) || !api->wasi_config_set_stderr_file(config, spec->stderr_path)) {
        api->wasi_config_delete(config);
        snprintf(problem, size, "the WASI context could not be built (argv, environment, or a stdio file)");
        return -1;
    }
    for (int i = 0; i < spec->npreopens + spec->nwritable; i++) {
        int writable = i >= spec->npreopens;
        const char *host = writable ? spec->wfolders[i - spec->npreopens] : spec->hosts[i];
        const char *guest = writable ? spec->wguests[i - spec->npreopens] : spec->guests[i];
        if (!api->wasi_config_preopen_dir(config, host, guest, writable)) {
            api->wasi_config_delete(config);
            snprintf(problem, size, "the directory %s could not be preopened at %s", host, guest);
            return -1;
        }
    }
    wasmtime_error_t *err = api->wasmtime_context_set_wasi(context, config);
    if (err != NULL) {
        api->wasmtime_error_delete(err);
        snprintf(problem, size, "wasmtime_context_set_wasi failed");
        return -1;
    }
    return 0;
}

/* A WASI request's outputs (stdout, stderr, the listing of its writable directories) against the first request's,
 * kept when it is the first: OUT_OK, OUT_MISMATCH, or OUT_ERROR when the written files cannot be read back. */
static int compare_output(Driver *d, WasiSpec *spec) {
    for (int k = 0; k < OUTPUTS; k++) {
        size_t len = 0;
        uint8_t *data;
        if (k == OUT_FILES) {
            Buffer listing = {0};
            for (int i = 0; i < spec->nwritable; i++) {
                if (snapshot_dir(&listing, spec->wfolders[i], spec->wguests[i]) != 0) {
                    char message[PATH_MAX + 96];
                    snprintf(message, sizeof message, "what the request wrote under %s could not be read back: %s", spec->wguests[i],
                             strerror(errno));
                    remember_text(d, message);
                    free(listing.data);
                    return OUT_ERROR;
                }
            }
            data = listing.data;
            len = listing.len;
        } else {
            data = read_file(k == OUT_STDOUT ? spec->stdout_path : spec->stderr_path, &len);
        }
        if (!spec->learned) {
            free(spec->first_out[k]);
            spec->first_out[k] = data;
            spec->first_len[k] = len;
            continue;
        }
        int same = len == spec->first_len[k] && (len == 0 || memcmp(data, spec->first_out[k], len) == 0);
        char message[2 * PATH_MAX + 96];
        if (!same && k == OUT_FILES)
            describe_difference(data, len, spec->first_out[k], spec->first_len[k], message, sizeof message);
        else if (!same)
            snprintf(message, sizeof message, "the %s (%zu bytes) differs from the first request's (%zu bytes)",
                     k == OUT_STDOUT ? "stdout" : "stderr", len, spec->first_len[k]);
        free(data);
        if (!same) {
            remember_text(d, message);
            return OUT_MISMATCH;
        }
    }
    spec->learned = 1;
    return OUT_OK;
}

/* One whole request; returns its outcome and writes its detail and, after a trap, the guest's memory size. */
static void remember_text(Driver *d, const char *text) {
    if (d->has_message)
        return;
    snprintf(d->first_message, MESSAGE_BYTES, "%s", text);
    d->has_message = 1;
}

/* One request's steps on `instance`: OUT_OK with the last call's result in *detail, or the outcome that ended it. */
static int run_program(Driver *d, Workload *w, wasmtime_context_t *context, wasmtime_instance_t *instance, int64_t *detail,
                       int64_t *memory_bytes) {
    const Api *api = &d->library->api;
    Program *p = w->program;
    int64_t values[MAX_VALUES];
    wasmtime_extern_t memory;
    int has_memory = api->wasmtime_instance_export_get(context, instance, p->memory, p->memory_len, &memory)
                     && memory.kind == WASMTIME_EXTERN_MEMORY;
    char message[160];
#define VALUE(o) ((o).slot < 0 ? (o).offset : values[(o).slot] + (o).offset)
#define BOUNDED(addr, n, what)                                                                                          \
    do {                                                                                                                \
        size_t size_ = has_memory ? api->wasmtime_memory_data_size(context, &memory.of.memory) : 0;                     \
        if (!has_memory || (addr) < 0 || (n) < 0 || (uint64_t)(addr) + (uint64_t)(n) > size_) {                        \
            snprintf(message, sizeof message, "recipe steps[%d] (%s): %lld bytes at %lld run past the memory's end (%zu bytes)", \
                     current, what, (long long)(n), (long long)(addr), size_);                                                \
            remember_text(d, message);                                                                                  \
            return OUT_ERROR;                                                                                           \
        }                                                                                                               \
    } while (0)
    int64_t *steps = d->steps;
    int step = 1, current = 0; /* the next stamp; the step running (as the recipe numbers it: steps[0] first) */
    if (steps) steps[0] = now_ns();
    for (int k = 0; k < p->nops; k++) {
        Op *op = &p->ops[k];
        if (op->op == OP_STAMP) {
            current++;
            if (steps && step < STEP_STAMPS) steps[step++] = now_ns();
        } else if (op->op == OP_CALL) {
            wasmtime_extern_t item;
            if (!api->wasmtime_instance_export_get(context, instance, op->name, op->name_len, &item) || item.kind != WASMTIME_EXTERN_FUNC)
                return OUT_NO_EXPORT;
            wasmtime_val_raw_t raw[MAX_SLOTS];
            for (int i = 0; i < op->nargs; i++) {
                int64_t v = VALUE(op->args[i]);
                if (op->arg_kinds[i] == KIND_I64) raw[i].i64 = v;
                else { raw[i].i64 = 0; raw[i].i32 = (int32_t)v; }
            }
            wasm_trap_t *trap = NULL;
            wasmtime_error_t *err = api->wasmtime_func_call_unchecked(context, &item.of.func, raw, op->nslots, &trap);
            if (err != NULL) {
                int status = 0;
                if (api->wasmtime_error_exit_status(err, &status)) {
                    *detail = status;
                    api->wasmtime_error_delete(err);
                    return OUT_EXIT;
                }
                *detail = drop_error(d, err, "WasmtimeError: ");
                return OUT_ERROR;
            }
            if (trap != NULL) {
                drop_trap(d, trap, detail);
                if (has_memory)
                    *memory_bytes = (int64_t)api->wasmtime_memory_data_size(context, &memory.of.memory);
                return OUT_TRAP;
            }
            int64_t result = op->result_kind == KIND_I64 ? raw[0].i64 : op->result_kind == KIND_I32 ? (int64_t)raw[0].i32 : 0;
            if (op->dst >= 0)
                values[op->dst] = result;
            if (op->result_kind != KIND_NONE && op->top)
                *detail = result;
        } else if (op->op == OP_WRITE) {
            int64_t at = VALUE(op->at);
            BOUNDED(at, (int64_t)op->len, "write");
            memcpy(api->wasmtime_memory_data(context, &memory.of.memory) + at, op->data, op->len);
        } else if (op->op == OP_READ) {
            int64_t at = VALUE(op->at), n = VALUE(op->value);
            BOUNDED(at, n, "read");
            const uint8_t *bytes = api->wasmtime_memory_data(context, &memory.of.memory) + at;
            if (!p->learned) {
                free(p->first[op->read]);
                p->first[op->read] = malloc((size_t)n ? (size_t)n : 1);
                if (p->first[op->read] == NULL)
                    return OUT_ERROR;
                memcpy(p->first[op->read], bytes, (size_t)n);
                p->first_len[op->read] = (size_t)n;
            } else if (p->first_len[op->read] != (size_t)n || memcmp(p->first[op->read], bytes, (size_t)n) != 0) {
                snprintf(message, sizeof message, "recipe steps[%d]: the %lld bytes read differ from the first request's", current,
                         (long long)n);
                remember_text(d, message);
                return OUT_MISMATCH;
            }
        } else if (op->op == OP_LOAD) {
            int64_t at = VALUE(op->at);
            BOUNDED(at, 4, "load");
            uint32_t v;
            memcpy(&v, api->wasmtime_memory_data(context, &memory.of.memory) + at, 4);
            values[op->dst] = v;
        } else if (op->op == OP_STORE32) {
            int64_t at = VALUE(op->at);
            BOUNDED(at, 4, "store");
            uint32_t v = (uint32_t)VALUE(op->value);
            memcpy(api->wasmtime_memory_data(context, &memory.of.memory) + at, &v, 4);
        }
    }
#undef VALUE
#undef BOUNDED
    p->learned = 1;
    return OUT_OK;
}

static int serve(Driver *d, Workload *w, int64_t *stamps, int64_t *detail, int64_t *memory_bytes) {
    const Api *api = &d->library->api;
    wasmtime_module_t *module = NULL;
    wasmtime_instance_pre_t *pre = NULL;
    int cached = d->capacity > 0;
    *detail = 0;
    *memory_bytes = -1;
    if (cached) {
        Entry *e = cache_find(d, w->sha256);
        if (e != NULL) {
            d->hits++;
            e->last_used = ++d->tick;
            module = e->module;
            pre = e->pre;
        } else {
            d->misses++;
            if (compile(d, w, &module, &pre) < 0)
                return OUT_COMPILE_ERROR;
            cache_insert(d, w->sha256, module, pre);
        }
    } else {
        d->misses++;
        if (compile(d, w, &module, &pre) < 0)
            return OUT_COMPILE_ERROR;
    }
    if (stamps) stamps[1] = now_ns();

    int outcome = OUT_OK;
    wasmtime_store_t *store = api->wasmtime_store_new(d->engine, NULL, NULL);
    wasmtime_context_t *context = api->wasmtime_store_context(store);
    if (d->limited)
        api->wasmtime_store_limiter(store, d->limiter[0], d->limiter[1], d->limiter[2], d->limiter[3], d->limiter[4]);
    if (d->fuel >= 0) {
        wasmtime_error_t *err = api->wasmtime_context_set_fuel(context, (uint64_t)d->fuel);
        if (err != NULL) {
            *detail = drop_error(d, err, "WasmtimeError: ");
            outcome = OUT_ERROR;
            goto done;
        }
    }
    if (d->epoch_ticks)
        api->wasmtime_context_set_epoch_deadline(context, d->epoch_ticks);
    if (w->wasi != NULL) {
        /* Its WASI context (and fresh writable directories) belong to the new store, as on the lean path. */
        char problem[PATH_MAX + 160];
        if (set_wasi(d, w->wasi, context, problem, sizeof problem) != 0) {
            remember_text(d, problem);
            outcome = OUT_ERROR;
            goto done;
        }
    }
    if (stamps) stamps[2] = now_ns();

    wasmtime_instance_t instance;
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *err = instantiate(d, w, context, module, pre, &instance, &trap);
    if (err != NULL && d->wait_ns >= 0) {
        /* The `wait` policy: a pool with no free slot is tried again until one frees or the budget is spent. */
        int64_t began = now_ns();
        int waited = 0;
        while (err != NULL && error_kind(d, err, "", 0) == ERROR_POOL_EXHAUSTED && now_ns() - began < d->wait_ns) {
            api->wasmtime_error_delete(err);
            if (!waited) { d->waits++; waited = 1; }
            struct timespec pause = {0, 20000};
            nanosleep(&pause, NULL);
            err = instantiate(d, w, context, module, pre, &instance, &trap);
        }
        d->wait_total_ns += (uint64_t)(now_ns() - began);
    }
    if (err != NULL) {
        *detail = drop_error(d, err, "WasmtimeError: ");
        outcome = OUT_ERROR;
        goto done;
    }
    if (trap != NULL) {
        drop_trap(d, trap, detail);
        outcome = OUT_TRAP;
        goto done;
    }
    if (stamps) stamps[3] = now_ns();

    if (w->program != NULL) {
        /* A recipe: its steps look up what they call, so the export-lookup phase is empty and the call phase is theirs. */
        if (stamps) stamps[4] = now_ns();
        outcome = run_program(d, w, context, &instance, detail, memory_bytes);
        if (stamps) stamps[5] = now_ns();
        goto done;
    }

    wasmtime_extern_t item;
    if (!api->wasmtime_instance_export_get(context, &instance, w->entry, w->entry_len, &item) || item.kind != WASMTIME_EXTERN_FUNC) {
        outcome = OUT_NO_EXPORT;
        goto done;
    }
    if (stamps) stamps[4] = now_ns();

    wasmtime_val_raw_t values[MAX_SLOTS];
    for (int i = 0; i < w->nargs; i++) {
        if (w->arg_kinds[i] == KIND_I64) values[i].i64 = w->args[i];
        else { values[i].i64 = 0; values[i].i32 = (int32_t)w->args[i]; }
    }
    err = api->wasmtime_func_call_unchecked(context, &item.of.func, values, w->nslots, &trap);
    if (err != NULL) {
        int status = 0;
        if (api->wasmtime_error_exit_status(err, &status)) {
            *detail = status;
            outcome = OUT_EXIT;
            api->wasmtime_error_delete(err);
        } else {
            *detail = drop_error(d, err, "WasmtimeError: ");
            outcome = OUT_ERROR;
        }
    } else if (trap != NULL) {
        drop_trap(d, trap, detail);
        outcome = OUT_TRAP;
        /* Its memory size tells a guest whose memory.grow failed (oom) from any other trap. */
        wasmtime_extern_t memory;
        if (api->wasmtime_instance_export_get(context, &instance, "memory", 6, &memory) && memory.kind == WASMTIME_EXTERN_MEMORY)
            *memory_bytes = (int64_t)api->wasmtime_memory_data_size(context, &memory.of.memory);
    } else if (w->result_kind == KIND_I64) {
        *detail = values[0].i64;
    } else if (w->result_kind == KIND_I32) {
        *detail = values[0].i32;
    }
    if (stamps) stamps[5] = now_ns();

done:
    api->wasmtime_store_delete(store);
    if (!cached)
        release(d, module, pre);
    if (w->wasi != NULL) {
        /* A WASI exit with the expected status is the request's normal end; ending without one when one is expected is not. */
        if (outcome == OUT_EXIT && *detail == w->wasi->expected_exit) {
            outcome = OUT_OK;
            *detail = 0;
        } else if (outcome == OUT_OK && w->wasi->expected_exit != 0) {
            char message[96];
            snprintf(message, sizeof message, "returned without exiting, expected exit %d", w->wasi->expected_exit);
            remember_text(d, message);
            outcome = OUT_MISMATCH;
        }
        if (outcome == OUT_OK && w->wasi->compare_output)
            outcome = compare_output(d, w->wasi);
    }
    if (stamps) {
        stamps[6] = now_ns();
        for (int k = 2; k < 6; k++) /* phases a failed request did not reach end where it ended */
            if (stamps[k] == 0) stamps[k] = stamps[6];
    }
    if (outcome == OUT_OK && w->check != CHECK_NONE && w->result_kind != KIND_NONE) {
        if (w->check == CHECK_FIRST && !w->learned) {
            w->expected = *detail;
            w->learned = 1;
        } else if (*detail != w->expected) {
            outcome = OUT_MISMATCH;
        }
    }
    if (stamps) stamps[7] = now_ns();
    return outcome;
}

static void Driver_clear(Driver *d) {
    if (d->entries != NULL && d->library != NULL) {
        for (int i = 0; i < d->capacity; i++)
            if (d->entries[i].used)
                release(d, d->entries[i].module, d->entries[i].pre);
    }
    free(d->entries);
    free(d->buckets);
    d->entries = NULL;
    d->buckets = NULL;
    d->capacity = 0;
    d->count = 0;
    if (d->own_linker && d->linker != NULL && d->library != NULL)
        d->library->api.wasmtime_linker_delete(d->linker);
    d->linker = NULL;
    for (int i = 0; i < d->nworkloads; i++) {
        free(d->workloads[i].wasm);
        free(d->workloads[i].entry);
        program_free(d->workloads[i].program);
        wasi_free(d->workloads[i].wasi);
    }
    free(d->workloads);
    d->workloads = NULL;
    d->nworkloads = 0;
}

static int Driver_init(Driver *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"library", "engine", "cache_capacity", "pre", "linker", "fuel", "epoch_ticks", "limiter",
                               "wait_ns", NULL};
    PyObject *library, *engine_object;
    unsigned long long engine = 0, linker = 0, epoch_ticks = 0;
    int capacity = 0, pre = 0;
    long long fuel = -1, wait_ns = -1;
    PyObject *limiter = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O|ipKLKOL", keywords, &LibraryType, &library, &engine_object, &capacity,
                                     &pre, &linker, &fuel, &epoch_ticks, &limiter, &wait_ns))
        return -1;
    if (PyObject_TypeCheck(engine_object, &EngineType)) {
        if (((Engine *)engine_object)->library != (Library *)library) {
            PyErr_SetString(PyExc_ValueError, "the engine was made by another library than the driver's");
            return -1;
        }
        engine = (unsigned long long)(uintptr_t)((Engine *)engine_object)->engine;
        Py_INCREF(engine_object);
        self->engine_owner = engine_object;
    } else {
        engine = PyLong_AsUnsignedLongLong(engine_object);
        if (PyErr_Occurred())
            return -1;
    }
    if (engine == 0) {
        PyErr_SetString(PyExc_ValueError, "engine is a null pointer");
        return -1;
    }
    if (capacity < 0 || capacity > (1 << 20)) {
        PyErr_Format(PyExc_ValueError, "cache_capacity = %d is out of range; allowed: 0 to 1048576", capacity);
        return -1;
    }
    Py_INCREF(library);
    self->library = (Library *)library;
    self->engine = (wasm_engine_t *)(uintptr_t)engine;
    self->pre = pre;
    self->fuel = fuel;
    self->epoch_ticks = epoch_ticks;
    self->wait_ns = wait_ns;
    if (limiter != Py_None) {
        if (!PyArg_ParseTuple(limiter, "LLLLL", &self->limiter[0], &self->limiter[1], &self->limiter[2], &self->limiter[3],
                              &self->limiter[4]))
            return -1;
        self->limited = 1;
    }
    if (linker) {
        /* The lab's core linker (WASI and host functions defined): borrowed, alive as long as the runtime. */
        self->linker = (wasmtime_linker_t *)(uintptr_t)linker;
    } else if (pre) {
        self->linker = self->library->api.wasmtime_linker_new(self->engine);
        self->own_linker = 1;
    }
    self->capacity = capacity;
    if (capacity > 0) {
        int buckets = 1;
        while (buckets < 2 * capacity) buckets <<= 1;
        self->nbuckets = buckets;
        self->buckets = malloc(sizeof(int) * (size_t)buckets);
        self->entries = calloc((size_t)capacity, sizeof(Entry));
        if (self->buckets == NULL || self->entries == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (int i = 0; i < buckets; i++) self->buckets[i] = -1;
    }
    return 0;
}

static void Driver_dealloc(Driver *self) {
    Driver_clear(self);
    Py_XDECREF(self->engine_owner); /* after the modules made on it are gone */
    Py_XDECREF(self->library);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Driver_add_workload(Driver *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"wasm", "sha256", "entry", "args", "arg_kinds", "result_kind", "check", "expected", NULL};
    Py_buffer wasm, sha, entry;
    PyObject *values;
    const char *kinds, *result_kind;
    int check = CHECK_NONE;
    long long expected = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*y*O!ss|iL", keywords, &wasm, &sha, &entry, &PyTuple_Type, &values,
                                     &kinds, &result_kind, &check, &expected))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t nargs = PyTuple_GET_SIZE(values);
    if (sha.len != 32) {
        PyErr_Format(PyExc_ValueError, "sha256 is %zd bytes; allowed: 32", sha.len);
        goto out;
    }
    if (nargs >= MAX_SLOTS || (Py_ssize_t)strlen(kinds) != nargs || strlen(result_kind) > 1) {
        PyErr_Format(PyExc_ValueError, "%zd arguments of kinds %s; allowed: fewer than %d, one kind each", nargs, kinds, MAX_SLOTS);
        goto out;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the driver is serving a block");
        goto out;
    }
    Workload *grown = realloc(self->workloads, sizeof(Workload) * (size_t)(self->nworkloads + 1));
    if (grown == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    self->workloads = grown;
    Workload *w = &self->workloads[self->nworkloads];
    memset(w, 0, sizeof *w);
    w->wasm = malloc((size_t)wasm.len ? (size_t)wasm.len : 1);
    w->entry = malloc((size_t)entry.len + 1);
    if (w->wasm == NULL || w->entry == NULL) {
        free(w->wasm);
        free(w->entry);
        PyErr_NoMemory();
        goto out;
    }
    memcpy(w->wasm, wasm.buf, (size_t)wasm.len);
    w->wasm_len = (size_t)wasm.len;
    memcpy(w->sha256, sha.buf, 32);
    memcpy(w->entry, entry.buf, (size_t)entry.len);
    w->entry[entry.len] = '\0';
    w->entry_len = (size_t)entry.len;
    w->nargs = (int)nargs;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        w->args[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(values, i));
        if (w->args[i] == -1 && PyErr_Occurred()) {
            free(w->wasm);
            free(w->entry);
            goto out;
        }
        if (kinds[i] != 'i' && kinds[i] != 'I') {
            PyErr_Format(PyExc_ValueError, "argument kind %c; allowed: i (i32), I (i64)", kinds[i]);
            free(w->wasm);
            free(w->entry);
            goto out;
        }
        w->arg_kinds[i] = kinds[i] == 'I' ? KIND_I64 : KIND_I32;
    }
    w->result_kind = result_kind[0] == 'I' ? KIND_I64 : result_kind[0] == 'i' ? KIND_I32 : KIND_NONE;
    w->nslots = (size_t)(nargs > 1 ? nargs : 1);
    w->check = check;
    w->expected = expected;
    result = PyLong_FromLong(self->nworkloads++);
out:
    PyBuffer_Release(&wasm);
    PyBuffer_Release(&sha);
    PyBuffer_Release(&entry);
    return result;
}

static int operand_of(PyObject *item, Operand *out) {
    long long offset;
    if (!PyArg_ParseTuple(item, "iL", &out->slot, &offset))
        return -1;
    out->offset = offset;
    if (out->slot >= MAX_VALUES) {
        PyErr_Format(PyExc_ValueError, "value slot %d; allowed: fewer than %d", out->slot, MAX_VALUES);
        return -1;
    }
    return 0;
}

static void program_free(Program *p) {
    if (p == NULL)
        return;
    for (int k = 0; k < p->nops; k++) {
        free(p->ops[k].name);
        free(p->ops[k].data);
    }
    for (int r = 0; r < p->nreads; r++)
        free(p->first[r]);
    free(p->first);
    free(p->first_len);
    free(p->ops);
    free(p->memory);
    free(p);
}

/* The ops of a recipe: (1, export, ((slot, offset), ...), kinds, result kind, dst, top) a call; (2, at, data) a write;
 * (3, at, length, read) a read; (4, at, dst) a u32 load; (5, at, value) a u32 store.  NULL with an exception set. */
static Program *program_of(PyObject *ops, Py_buffer *memory, int nreads) {
    Program *p = calloc(1, sizeof *p);
    if (p == NULL)
        return (Program *)PyErr_NoMemory();
    Py_ssize_t nops = PyList_GET_SIZE(ops);
    p->ops = calloc((size_t)(nops ? nops : 1), sizeof(Op));
    p->memory = malloc((size_t)memory->len + 1);
    p->first = calloc((size_t)(nreads ? nreads : 1), sizeof(uint8_t *));
    p->first_len = calloc((size_t)(nreads ? nreads : 1), sizeof(size_t));
    if (p->ops == NULL || p->memory == NULL || p->first == NULL || p->first_len == NULL) {
        program_free(p);
        return (Program *)PyErr_NoMemory();
    }
    memcpy(p->memory, memory->buf, (size_t)memory->len);
    p->memory[memory->len] = '\0';
    p->memory_len = (size_t)memory->len;
    p->nreads = nreads;
    for (Py_ssize_t k = 0; k < nops; k++) {
        PyObject *t = PyList_GET_ITEM(ops, k);
        Op *op = &p->ops[k];
        p->nops = (int)k + 1;
        op->dst = -1;
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) < 3) {
            PyErr_Format(PyExc_ValueError, "op %zd is not a tuple of at least 3", k);
            goto fail;
        }
        op->op = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 0));
        if (op->op == OP_STAMP) {
            /* nothing to parse: (6, 0, 0) */
        } else if (op->op == OP_CALL) {
            Py_buffer name;
            PyObject *args;
            const char *kinds, *rkind;
            int code;
            if (!PyArg_ParseTuple(t, "iy*O!ssii", &code, &name, &PyTuple_Type, &args, &kinds, &rkind, &op->dst, &op->top))
                goto fail;
            op->name = malloc((size_t)name.len + 1);
            if (op->name == NULL) { PyBuffer_Release(&name); PyErr_NoMemory(); goto fail; }
            memcpy(op->name, name.buf, (size_t)name.len);
            op->name[name.len] = '\0';
            op->name_len = (size_t)name.len;
            PyBuffer_Release(&name);
            Py_ssize_t nargs = PyTuple_GET_SIZE(args);
            if (nargs >= MAX_SLOTS || (Py_ssize_t)strlen(kinds) != nargs) {
                PyErr_Format(PyExc_ValueError, "op %zd: %zd arguments of kinds %s; allowed: fewer than %d", k, nargs, kinds, MAX_SLOTS);
                goto fail;
            }
            op->nargs = (int)nargs;
            for (Py_ssize_t i = 0; i < nargs; i++) {
                if (operand_of(PyTuple_GET_ITEM(args, i), &op->args[i]) < 0)
                    goto fail;
                op->arg_kinds[i] = kinds[i] == 'I' ? KIND_I64 : KIND_I32;
            }
            op->result_kind = rkind[0] == 'I' ? KIND_I64 : rkind[0] == 'i' ? KIND_I32 : KIND_NONE;
            op->nslots = (size_t)(nargs > 1 ? nargs : 1);
        } else if (op->op == OP_WRITE) {
            Py_buffer data;
            PyObject *at;
            int code;
            if (!PyArg_ParseTuple(t, "iOy*", &code, &at, &data))
                goto fail;
            op->data = malloc((size_t)data.len ? (size_t)data.len : 1);
            if (op->data == NULL) { PyBuffer_Release(&data); PyErr_NoMemory(); goto fail; }
            memcpy(op->data, data.buf, (size_t)data.len);
            op->len = (size_t)data.len;
            PyBuffer_Release(&data);
            if (operand_of(at, &op->at) < 0)
                goto fail;
        } else if (op->op == OP_READ) {
            PyObject *at, *length;
            int code;
            if (!PyArg_ParseTuple(t, "iOOi", &code, &at, &length, &op->read) || operand_of(at, &op->at) < 0 || operand_of(length, &op->value) < 0)
                goto fail;
            if (op->read < 0 || op->read >= nreads) {
                PyErr_Format(PyExc_ValueError, "op %zd reads into %d; allowed: 0..%d", k, op->read, nreads - 1);
                goto fail;
            }
        } else if (op->op == OP_LOAD || op->op == OP_STORE32) {
            PyObject *at, *other;
            int code;
            if (!PyArg_ParseTuple(t, "iOO", &code, &at, &other) || operand_of(at, &op->at) < 0)
                goto fail;
            if (op->op == OP_LOAD) {
                op->dst = (int)PyLong_AsLong(other);
                if (op->dst < 0 || op->dst >= MAX_VALUES) { PyErr_Format(PyExc_ValueError, "op %zd: bad slot", k); goto fail; }
            } else if (operand_of(other, &op->value) < 0) {
                goto fail;
            }
        } else {
            PyErr_Format(PyExc_ValueError, "op %zd: code %d; allowed: 1 call, 2 write, 3 read, 4 load, 5 store32, 6 stamp", k, op->op);
            goto fail;
        }
        if (op->dst >= MAX_VALUES) {
            PyErr_Format(PyExc_ValueError, "op %zd: value slot %d; allowed: fewer than %d", k, op->dst, MAX_VALUES);
            goto fail;
        }
    }
    return p;
fail:
    program_free(p);
    return NULL;
}

/* add_recipe(wasm, sha256, ops, memory, nreads, result_kind, check, expected) -> index: a recipe's steps (see program_of). */
static PyObject *Driver_add_recipe(Driver *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"wasm", "sha256", "ops", "memory", "nreads", "result_kind", "check", "expected", NULL};
    PyObject *ops;
    Py_buffer memory;
    int nreads, check;
    const char *result_kind;
    long long expected;
    Py_buffer wasm, sha;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*O!y*isiL", keywords, &wasm, &sha, &PyList_Type, &ops, &memory, &nreads,
                                     &result_kind, &check, &expected))
        return NULL;
    PyObject *result = NULL;
    Program *program = program_of(ops, &memory, nreads);
    if (program != NULL) {
        /* a workload whose one "call" is the program: add_workload with no arguments, then attach it */
        PyObject *added = PyObject_CallMethod((PyObject *)self, "add_workload", "y#y#y#()ssiL", (const char *)wasm.buf, wasm.len,
                                              (const char *)sha.buf, sha.len, "(recipe)", (Py_ssize_t)8, "", result_kind, check,
                                              expected);
        if (added == NULL) {
            program_free(program);
        } else {
            self->workloads[PyLong_AsLong(added)].program = program;
            result = added;
        }
    }
    PyBuffer_Release(&wasm);
    PyBuffer_Release(&sha);
    PyBuffer_Release(&memory);
    return result;
}

/* The workload a Python index names, or NULL with IndexError (or the conversion's error) set. */
static Workload *workload_at(Driver *self, PyObject *arg) {
    long index = PyLong_AsLong(arg);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    if (index < 0 || index >= self->nworkloads) {
        PyErr_Format(PyExc_IndexError, "workload index %ld; allowed: 0 to %d", index, self->nworkloads - 1);
        return NULL;
    }
    return &self->workloads[index];
}

static char *copy_string(PyObject *item) {
    const char *text = PyBytes_Check(item) ? PyBytes_AS_STRING(item) : NULL;
    if (text == NULL) {
        PyErr_SetString(PyExc_TypeError, "WASI strings and paths are bytes");
        return NULL;
    }
    char *out = strdup(text);
    if (out == NULL)
        PyErr_NoMemory();
    return out;
}

/* A tuple of bytes as a NULL-terminated array of copies (its length in *n); NULL with an exception set. */
static char **copy_strings(PyObject *items, int *n) {
    if (!PyTuple_Check(items)) {
        PyErr_SetString(PyExc_TypeError, "expected a tuple of bytes");
        return NULL;
    }
    *n = (int)PyTuple_GET_SIZE(items);
    char **out = calloc((size_t)*n + 1, sizeof(char *));
    if (out == NULL) { PyErr_NoMemory(); return NULL; }
    for (int i = 0; i < *n; i++) {
        out[i] = copy_string(PyTuple_GET_ITEM(items, i));
        if (out[i] == NULL) {
            free_strings(out);  /* the copies so far: the rest of the array is still NULL */
            return NULL;
        }
    }
    return out;
}

/* set_wasi(i, argv, env_names, env_values, stdin, stdout, stderr, hosts, guests, expected_exit, compare_output
 *          [, writable_folders, writable_sources, writable_guests]):
 * workload i gets a WASI context per request (every string bytes; stdin None for none; the paths are the files this
 * driver's requests read and write; each writable directory is made anew in its folder for every request, empty for
 * an empty source or a copy of it), instantiated through the driver's linker. */
static PyObject *Driver_set_wasi(Driver *self, PyObject *args) {
    PyObject *index, *argv, *names, *values, *stdin_path, *stdout_path, *stderr_path, *hosts, *guests;
    PyObject *wfolders = NULL, *wsources = NULL, *wguests = NULL;
    int expected_exit, compare;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOip|OOO", &index, &argv, &names, &values, &stdin_path, &stdout_path, &stderr_path, &hosts,
                          &guests, &expected_exit, &compare, &wfolders, &wsources, &wguests))
        return NULL;
    Workload *w = workload_at(self, index);
    if (w == NULL)
        return NULL;
    if (!self->library->api.wasi_resolved) {
        PyErr_SetString(PyExc_RuntimeError, "call Library.enable_wasi() first");
        return NULL;
    }
    if (self->linker == NULL) {
        PyErr_SetString(PyExc_ValueError, "a WASI workload needs the driver to be made with a linker that defines WASI");
        return NULL;
    }
    WasiSpec *spec = calloc(1, sizeof(WasiSpec));
    if (spec == NULL)
        return PyErr_NoMemory();
    PyObject *none = PyTuple_New(0); /* the writable directories' default: none */
    if (none == NULL) {
        free(spec);
        return NULL;
    }
    int nvalues = 0, nguests = 0, nsources = 0, nwguests = 0;
    spec->argv = copy_strings(argv, &spec->argc);
    spec->env_names = spec->argv ? copy_strings(names, &spec->envc) : NULL;
    spec->env_values = spec->env_names ? copy_strings(values, &nvalues) : NULL;
    spec->hosts = spec->env_values ? copy_strings(hosts, &spec->npreopens) : NULL;
    spec->guests = spec->hosts ? copy_strings(guests, &nguests) : NULL;
    spec->wfolders = spec->guests ? copy_strings(wfolders ? wfolders : none, &spec->nwritable) : NULL;
    spec->wsources = spec->wfolders ? copy_strings(wsources ? wsources : none, &nsources) : NULL;
    spec->wguests = spec->wsources ? copy_strings(wguests ? wguests : none, &nwguests) : NULL;
    spec->stdout_path = spec->wguests ? copy_string(stdout_path) : NULL;
    spec->stderr_path = spec->stdout_path ? copy_string(stderr_path) : NULL;
    spec->stdin_path = spec->stderr_path && stdin_path != Py_None ? copy_string(stdin_path) : NULL;
    Py_DECREF(none);
    if (spec->stderr_path == NULL || (stdin_path != Py_None && spec->stdin_path == NULL) || nvalues != spec->envc ||
        nguests != spec->npreopens || nsources != spec->nwritable || nwguests != spec->nwritable) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "env names and values, preopen hosts and guests, and writable folders, sources "
                                              "and guests must pair up");
        wasi_free(spec);
        return NULL;
    }
    spec->expected_exit = expected_exit;
    spec->compare_output = compare;
    wasi_free(w->wasi);
    w->wasi = spec;
    w->linked = 1;
    Py_RETURN_NONE;
}

/* first_output(i) -> (stdout, stderr, files) of workload i's first request, or None before it: what later ones must
 * equal (files: the listing of its writable directories, records as snapshot_dir writes them). */
static PyObject *Driver_first_output(Driver *self, PyObject *arg) {
    Workload *w = workload_at(self, arg);
    if (w == NULL)
        return NULL;
    if (w->wasi == NULL || !w->wasi->learned)
        Py_RETURN_NONE;
#define OUTPUT(k) (const char *)(w->wasi->first_out[k] ? (char *)w->wasi->first_out[k] : ""), (Py_ssize_t)w->wasi->first_len[k]
    return Py_BuildValue("(y#y#y#)", OUTPUT(OUT_STDOUT), OUTPUT(OUT_STDERR), OUTPUT(OUT_FILES));
#undef OUTPUT
}

/* set_linked(i): workload i (host functions, no WASI) is instantiated through the driver's linker. */
static PyObject *Driver_set_linked(Driver *self, PyObject *arg) {
    Workload *w = workload_at(self, arg);
    if (w == NULL)
        return NULL;
    if (self->linker == NULL) {
        PyErr_SetString(PyExc_ValueError, "a linked workload needs the driver to be made with a linker");
        return NULL;
    }
    w->linked = 1;
    Py_RETURN_NONE;
}

/* first_reads(i) -> tuple of bytes, or None before workload i's first request: what every later request is compared with. */
static PyObject *Driver_first_reads(Driver *self, PyObject *arg) {
    Workload *w = workload_at(self, arg);
    if (w == NULL)
        return NULL;
    Program *p = w->program;
    if (p == NULL || !p->learned)
        Py_RETURN_NONE;
    PyObject *out = PyTuple_New(p->nreads);
    for (int r = 0; out != NULL && r < p->nreads; r++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)p->first[r], (Py_ssize_t)p->first_len[r]);
        if (b == NULL) { Py_DECREF(out); return NULL; }
        PyTuple_SET_ITEM(out, r, b);
    }
    return out;
}

/* run(indices, records, stamps=None, schedule=None, steps=None) -> (wall_ns, first failure's message or None)
 *
 * indices: int32 buffer of workload indices, one per request; records: int64 buffer of 5 words per request
 * (ns, outcome, detail, memory bytes, the open-loop generator's lateness); stamps: int64 buffer of 8 per request, or None; schedule: int64 buffer of
 * each request's due time in ns after the block's start (open-loop load), or None (each starts when the last
 * ends); steps: int64 buffer of STEP_STAMPS per request for a recipe's step stamps (phased mode), or None.  The GIL is released
 * while the block runs.  A block stops at the first request whose outcome means the variant cannot go on
 * (a result that does not match, a missing export, a module that does not compile): the count of requests
 * served is the number of records written, wall_ns the block's time. */
static PyObject *Driver_run(Driver *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"indices", "records", "stamps", "schedule", "steps", NULL};
    Py_buffer indices, records, stamps = {0}, schedule = {0}, steps = {0};
    PyObject *stamps_object = Py_None, *schedule_object = Py_None, *steps_object = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*w*|OOO", keywords, &indices, &records, &stamps_object, &schedule_object,
                                     &steps_object))
        return NULL;
    PyObject *result = NULL;
    int have_stamps = 0, have_schedule = 0, have_steps = 0;
    if (steps_object != Py_None) {
        if (PyObject_GetBuffer(steps_object, &steps, PyBUF_WRITABLE) < 0)
            goto out;
        have_steps = 1;
    }
    if (stamps_object != Py_None) {
        if (PyObject_GetBuffer(stamps_object, &stamps, PyBUF_WRITABLE) < 0)
            goto out;
        have_stamps = 1;
    }
    if (schedule_object != Py_None) {
        if (PyObject_GetBuffer(schedule_object, &schedule, PyBUF_SIMPLE) < 0)
            goto out;
        have_schedule = 1;
    }
    Py_ssize_t n = indices.len / (Py_ssize_t)sizeof(int32_t);
    if (indices.len % (Py_ssize_t)sizeof(int32_t) != 0 || records.len < n * RECORD_WORDS * (Py_ssize_t)sizeof(int64_t) ||
        (have_stamps && stamps.len < n * STAMPS * (Py_ssize_t)sizeof(int64_t)) ||
        (have_schedule && schedule.len < n * (Py_ssize_t)sizeof(int64_t)) ||
        (have_steps && steps.len < n * STEP_STAMPS * (Py_ssize_t)sizeof(int64_t))) {
        PyErr_SetString(PyExc_ValueError,
                        "indices must be int32 and records (5 int64 per request), stamps (8), schedule (1) and steps (65) large enough");
        goto out;
    }
    const int32_t *which = (const int32_t *)indices.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (which[i] < 0 || which[i] >= self->nworkloads) {
            PyErr_Format(PyExc_IndexError, "workload index %d; allowed: 0 to %d", which[i], self->nworkloads - 1);
            goto out;
        }
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the driver is serving a block in another thread; use one driver per thread");
        goto out;
    }
    self->busy = 1;
    self->has_message = 0;
    int64_t *out = (int64_t *)records.buf;
    int64_t *stamp = have_stamps ? (int64_t *)stamps.buf : NULL;
    const int64_t *due = have_schedule ? (const int64_t *)schedule.buf : NULL;
    int64_t wall = 0;
    Py_BEGIN_ALLOW_THREADS
    int64_t block_start = now_ns(), previous_end = block_start;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t *row = out + i * RECORD_WORDS;
        int64_t *phase = stamp ? stamp + i * STAMPS : NULL;
        if (phase) memset(phase, 0, sizeof(int64_t) * STAMPS);
        int64_t t0, lag = 0;
        if (due != NULL) {
            /* Open loop: request i is due at block start + due[i]; its latency counts from then, so time spent
             * queued behind a slow request is part of it (no coordinated omission).  Sleep while more than 2 ms
             * from due (a wake-up can be late by far more than a request takes), spin after. */
            t0 = block_start + due[i];
            for (int64_t left = t0 - now_ns(); left > 0; left = t0 - now_ns()) {
                if (left > 2000000) {
                    struct timespec pause = {0, (long)(left - 1000000)};
                    nanosleep(&pause, NULL);
                }
            }
            /* The generator's own lateness: how long after it could have started (due, or the previous request's
             * end if that was later) the request did start.  Not queueing: the load generator's error. */
            int64_t ready = i > 0 && previous_end > t0 ? previous_end : t0;
            lag = now_ns() - ready;
        } else {
            t0 = now_ns();
        }
        if (phase) phase[0] = t0;
        self->steps = have_steps ? (int64_t *)steps.buf + i * STEP_STAMPS : NULL;
        if (self->steps) memset(self->steps, 0, sizeof(int64_t) * STEP_STAMPS);
        int outcome = serve(self, &self->workloads[which[i]], phase, &row[2], &row[3]);
        previous_end = now_ns();
        row[0] = previous_end - t0;
        row[1] = outcome;
        row[4] = lag;
        if (outcome == OUT_MISMATCH || outcome == OUT_NO_EXPORT || outcome == OUT_COMPILE_ERROR) {
            for (Py_ssize_t j = i + 1; j < n; j++) out[j * RECORD_WORDS + 1] = -1; /* not served */
            break;
        }
    }
    wall = now_ns() - block_start;
    self->steps = NULL;
    Py_END_ALLOW_THREADS
    self->busy = 0;
    result = Py_BuildValue("(Ls)", (long long)wall, self->has_message ? self->first_message : NULL);
out:
    PyBuffer_Release(&indices);
    PyBuffer_Release(&records);
    if (have_stamps)
        PyBuffer_Release(&stamps);
    if (have_schedule)
        PyBuffer_Release(&schedule);
    if (have_steps)
        PyBuffer_Release(&steps);
    return result;
}

static PyObject *Driver_take_stats(Driver *self, PyObject *unused) {
    PyObject *stats = Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K}", "hits", (unsigned long long)self->hits, "misses",
                                    (unsigned long long)self->misses, "evictions", (unsigned long long)self->evictions,
                                    "compile_ns", (unsigned long long)self->compile_ns, "waits", (unsigned long long)self->waits,
                                    "wait_ns", (unsigned long long)self->wait_total_ns);
    self->hits = self->misses = self->evictions = self->compile_ns = self->waits = self->wait_total_ns = 0;
    return stats;
}

static PyObject *Driver_expectation(Driver *self, PyObject *arg) {
    const Workload *w = workload_at(self, arg);
    if (w == NULL)
        return NULL;
    if (w->check == CHECK_NONE || (w->check == CHECK_FIRST && !w->learned))
        Py_RETURN_NONE;
    return PyLong_FromLongLong(w->expected);
}

static PyObject *Driver_cached(Driver *self, PyObject *unused) {
    return PyLong_FromLong(self->count);
}

static PyObject *Driver_close(Driver *self, PyObject *unused) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the driver is serving a block");
        return NULL;
    }
    Driver_clear(self);
    Py_RETURN_NONE;
}

static PyMethodDef Driver_methods[] = {
    {"add_workload", (PyCFunction)(void (*)(void))Driver_add_workload, METH_VARARGS | METH_KEYWORDS,
     "Add a core module to serve: its bytes, SHA-256, export, arguments and their kinds ('i' i32, 'I' i64), the result's kind "
     "('' none), the check (0 none, 1 expected, 2 the first result) and the expected value; returns its index."},
    {"add_recipe", (PyCFunction)(void (*)(void))Driver_add_recipe, METH_VARARGS | METH_KEYWORDS,
     "Add a recipe's steps, flattened into ops (see the source), with its memory's name, reads, last result's kind and check."},
    {"first_reads", (PyCFunction)Driver_first_reads, METH_O, "The first request's reads of recipe workload i (None before it)."},
    {"set_wasi", (PyCFunction)Driver_set_wasi, METH_VARARGS, "Give workload i a WASI context per request."},
    {"first_output", (PyCFunction)Driver_first_output, METH_O, "The first request's stdout, stderr and written files of WASI workload i."},
    {"set_linked", (PyCFunction)Driver_set_linked, METH_O, "Instantiate workload i through the driver's linker."},
    {"run", (PyCFunction)(void (*)(void))Driver_run, METH_VARARGS | METH_KEYWORDS, "Serve a block of requests (see the source)."},
    {"take_stats", (PyCFunction)Driver_take_stats, METH_NOARGS, "Cache and pool-wait counters since the last call, then zeroed."},
    {"cached", (PyCFunction)Driver_cached, METH_NOARGS, "How many compiled modules the cache holds."},
    {"expectation", (PyCFunction)Driver_expectation, METH_O,
     "What workload i's results are checked against: the expected value or the learned first result (None: not yet, or unchecked)."},
    {"close", (PyCFunction)Driver_close, METH_NOARGS, "Delete every cached module, InstancePre and own linker."},
    {NULL},
};

static PyTypeObject DriverType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasmlab._native.Driver",
    .tp_basicsize = sizeof(Driver),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Serves blocks of whole requests on one engine, with the GIL released (see the module's source).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Driver_init,
    .tp_dealloc = (destructor)Driver_dealloc,
    .tp_methods = Driver_methods,
};

static PyObject *layout(PyObject *module, PyObject *unused) {
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:n,s:n}", "wasmtime_instance_t", (Py_ssize_t)sizeof(wasmtime_instance_t),
                         "wasmtime_func_t", (Py_ssize_t)sizeof(wasmtime_func_t), "wasmtime_memory_t",
                         (Py_ssize_t)sizeof(wasmtime_memory_t), "wasmtime_extern_t", (Py_ssize_t)sizeof(wasmtime_extern_t),
                         "wasmtime_extern_t.of", (Py_ssize_t)offsetof(wasmtime_extern_t, of), "wasmtime_val_raw_t",
                         (Py_ssize_t)sizeof(wasmtime_val_raw_t), "wasm_byte_vec_t", (Py_ssize_t)sizeof(wasm_byte_vec_t));
}

static PyObject *monotonic_ns(PyObject *module, PyObject *unused) {
    return PyLong_FromLongLong(now_ns());
}

static PyMethodDef module_methods[] = {
    {"layout", layout, METH_NOARGS, "Sizes and offsets of the C API structs as this module declares them."},
    {"monotonic_ns", monotonic_ns, METH_NOARGS, "The driver's clock (CLOCK_MONOTONIC), in ns."},
    {NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "wasmlab._native", "The native call path's request loop (see the C source).", -1, module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&LibraryType) < 0 || PyType_Ready(&EngineType) < 0 || PyType_Ready(&DriverType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&LibraryType);
    Py_INCREF(&EngineType);
    Py_INCREF(&DriverType);
    if (PyModule_AddObject(m, "Library", (PyObject *)&LibraryType) < 0 || PyModule_AddObject(m, "Engine", (PyObject *)&EngineType) < 0 ||
        PyModule_AddObject(m, "Driver", (PyObject *)&DriverType) < 0)
        return NULL;
    static const struct { const char *name; int value; } constants[] = {
        {"OUT_OK", OUT_OK}, {"OUT_TRAP", OUT_TRAP}, {"OUT_EXIT", OUT_EXIT}, {"OUT_ERROR", OUT_ERROR},
        {"OUT_MISMATCH", OUT_MISMATCH}, {"OUT_NO_EXPORT", OUT_NO_EXPORT}, {"OUT_COMPILE_ERROR", OUT_COMPILE_ERROR},
        {"CHECK_NONE", CHECK_NONE}, {"CHECK_EXPECTED", CHECK_EXPECTED}, {"CHECK_FIRST", CHECK_FIRST},
        {"RECORD_WORDS", RECORD_WORDS}, {"STAMPS", STAMPS}, {"STEP_STAMPS", STEP_STAMPS},
        {"ERROR_OTHER", ERROR_OTHER}, {"ERROR_POOL_EXHAUSTED", ERROR_POOL_EXHAUSTED}, {"ERROR_MEMORY_LIMIT", ERROR_MEMORY_LIMIT},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++)
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0)
            return NULL;
    return m;
}
