/*
 * wasmlab._native: the native call path's request loop in C, over the libwasmtime that wasmtime-py loaded.
 *
 * The folder is split by concept, the way CPython's Modules/_sqlite and wasmtime's own C API headers are:
 *   wasmtime_api.h     the C API types and functions the driver uses (checked against wasmtime._bindings by a test)
 *   library.c          those functions resolved with dlsym from one libwasmtime
 *   engine.c           an engine made through a library of its own (another release's), pooling knobs by name
 *   module_cache.c     the compiled-module cache (LRU, keyed by SHA-256)
 *   wasi.c             a WASI context per request, and the check of its outputs
 *   directories.c      fresh writable directories, their snapshots, where two differ
 *   program.c          a recipe's steps as ops
 *   request_loop.c     serve a block: one whole request after another, timed, each outcome classified
 * none of which includes Python.h (tests/native/core_main.c serves requests with them alone), and the glue:
 *   module.c           this module (its constants, layout(), monotonic_ns())
 *   library_type.c     the Library and Engine types
 *   driver_type.c      the Driver type (run a block with the GIL released)
 *   driver_inputs.c    what a Driver serves: a RequestPlan (wasmlab/host/native_boundary.py) read by attribute, its
 *                      version checked against BOUNDARY_VERSION
 */
#include "glue.h"

#include "clock.h"
#include "failures.h"

static PyObject *layout(PyObject *module, PyObject *unused) {
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:n,s:n}", "wasmtime_instance_t", (Py_ssize_t)sizeof(wasmtime_instance_t),
                         "wasmtime_func_t", (Py_ssize_t)sizeof(wasmtime_func_t), "wasmtime_memory_t",
                         (Py_ssize_t)sizeof(wasmtime_memory_t), "wasmtime_extern_t", (Py_ssize_t)sizeof(wasmtime_extern_t),
                         "wasmtime_extern_t.of", (Py_ssize_t)offsetof(wasmtime_extern_t, of), "wasmtime_val_raw_t",
                         (Py_ssize_t)sizeof(wasmtime_val_raw_t), "wasm_byte_vec_t", (Py_ssize_t)sizeof(wasm_byte_vec_t));
}

/* The component value structs' sizes and offsets as component_api.h declares them (checked against wasmtime._bindings). */
static PyObject *component_layout(PyObject *module, PyObject *unused) {
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n}", "wasmtime_component_val_t", (Py_ssize_t)sizeof(wasmtime_component_val_t),
                         "wasmtime_component_val_t.of", (Py_ssize_t)offsetof(wasmtime_component_val_t, of),
                         "wasmtime_component_valrecord_entry_t", (Py_ssize_t)sizeof(wasmtime_component_valrecord_entry_t),
                         "wasmtime_component_valvariant_t", (Py_ssize_t)sizeof(wasmtime_component_valvariant_t),
                         "wasmtime_component_valresult_t", (Py_ssize_t)sizeof(wasmtime_component_valresult_t),
                         "wasmtime_component_func_t", (Py_ssize_t)sizeof(wasmtime_component_func_t),
                         "wasmtime_component_instance_t", (Py_ssize_t)sizeof(wasmtime_component_instance_t),
                         "wasmtime_component_valunion_t", (Py_ssize_t)sizeof(wasmtime_component_valunion_t));
}

/* failures.c's reading of a wasmtime message, for the Python call paths' failures. */
static PyObject *error_kind_of(PyObject *module, PyObject *arg) {
    Py_ssize_t size = 0;
    const char *text = PyUnicode_AsUTF8AndSize(arg, &size);
    if (text == NULL)
        return NULL;
    return PyLong_FromLong(message_kind(text, (size_t)size));
}

static PyObject *monotonic_ns(PyObject *module, PyObject *unused) {
    return PyLong_FromLongLong(now_ns());
}

static PyMethodDef module_methods[] = {
    {"component_layout", component_layout, METH_NOARGS, "Sizes and offsets of the component value structs as declared here."},
    {"layout", layout, METH_NOARGS, "Sizes and offsets of the C API structs as this module declares them."},
    {"monotonic_ns", monotonic_ns, METH_NOARGS, "The driver's clock (CLOCK_MONOTONIC), in ns."},
    {"error_kind_of", error_kind_of, METH_O, "The ERROR_* kind of a wasmtime error message (pool exhausted, memory limit, other)."},
    {NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "wasmlab._native", "The native call path's request loop (see wasmlab/native/module.c).", -1,
    module_methods,
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
        {"BOUNDARY_VERSION", BOUNDARY_VERSION},
        {"ERROR_OTHER", ERROR_OTHER}, {"ERROR_POOL_EXHAUSTED", ERROR_POOL_EXHAUSTED}, {"ERROR_MEMORY_LIMIT", ERROR_MEMORY_LIMIT},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++)
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0)
            return NULL;
    return m;
}
