/* wasmlab._native.Library and wasmlab._native.Engine: a libwasmtime's functions, and an engine made through them. */
#include "glue.h"

#include <dlfcn.h>

/* ---- Library ---- */

static int Library_init(LibraryObject *self, PyObject *args, PyObject *kwds) {
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
        self->handle = library_open(PyBytes_AS_STRING(encoded));
        Py_DECREF(encoded);
        if (self->handle == NULL) {
            PyErr_Format(PyExc_OSError, "cannot open libwasmtime %S: %s", path, dlerror());
            return -1;
        }
        self->owned = 1;
        Py_INCREF(path);
        self->path = path;
    }
    const char *missing = library_resolve(self->handle, &self->api);
    if (missing != NULL) {
        PyErr_Format(PyExc_LookupError, "libwasmtime %S has no function %s (needed by the native call path)", self->path, missing);
        return -1;
    }
    /* Optional: a library without the component functions still serves core modules. */
    self->component_missing = component_api_resolve(self->handle, &self->components);
    return 0;
}

static void Library_dealloc(LibraryObject *self) {
    /* A library opened here stays mapped: modules and engines made from it may outlive this object. */
    Py_XDECREF(self->path);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* enable_wasi(): resolve the WASI functions (a LookupError naming one the library lacks). */
static PyObject *Library_enable_wasi(LibraryObject *self, PyObject *unused) {
    const char *missing = library_resolve_wasi(self->handle, &self->api);
    if (missing != NULL) {
        PyErr_Format(PyExc_LookupError, "libwasmtime %S has no function %s (needed for WASI on the native call path)", self->path,
                     missing);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* wasi_functions() -> {name: number of parameters declared}, to check against wasmtime._bindings. */
static PyObject *Library_wasi_functions(PyObject *cls, PyObject *unused) {
    PyObject *out = PyDict_New();
    for (size_t i = 0; out != NULL && i < WASI_FUNCTION_COUNT; i++) {
        PyObject *n = PyLong_FromLong(WASI_FUNCTION_NARGS[i]);
        if (n == NULL || PyDict_SetItemString(out, WASI_FUNCTION_NAMES[i], n) < 0) { Py_XDECREF(n); Py_DECREF(out); return NULL; }
        Py_DECREF(n);
    }
    return out;
}

static PyObject *Library_functions(PyObject *cls, PyObject *unused) {
    PyObject *names = PyTuple_New((Py_ssize_t)FUNCTION_COUNT);
    if (names == NULL)
        return NULL;
    for (size_t i = 0; i < FUNCTION_COUNT; i++)
        PyTuple_SET_ITEM(names, i, PyUnicode_FromString(FUNCTION_NAMES[i]));
    return names;
}

/* component_functions() -> the component C API functions the driver resolves, by name. */
static PyObject *Library_component_functions(PyObject *cls, PyObject *unused) {
    PyObject *names = PyTuple_New((Py_ssize_t)COMPONENT_FUNCTION_COUNT);
    for (size_t i = 0; names != NULL && i < COMPONENT_FUNCTION_COUNT; i++)
        PyTuple_SET_ITEM(names, i, PyUnicode_FromString(COMPONENT_FUNCTION_NAMES[i]));
    return names;
}

/* component_refusal() -> None when this library serves components, else the one line saying why not. */
static PyObject *Library_component_refusal(LibraryObject *self, PyObject *unused) {
    if (self->components.resolved)
        Py_RETURN_NONE;
    return PyUnicode_FromFormat("libwasmtime %S has no function %s: it serves no components", self->path, self->component_missing);
}

static PyMethodDef Library_methods[] = {
    {"component_functions", (PyCFunction)Library_component_functions, METH_NOARGS | METH_CLASS,
     "The component C API functions the driver resolves, by name."},
    {"component_refusal", (PyCFunction)Library_component_refusal, METH_NOARGS, "None, or why this library serves no components."},
    {"functions", (PyCFunction)Library_functions, METH_NOARGS | METH_CLASS, "The C API functions the driver resolves, by name."},
    {"wasi_functions", (PyCFunction)Library_wasi_functions, METH_NOARGS | METH_CLASS, "The WASI functions and their declared arity."},
    {"enable_wasi", (PyCFunction)Library_enable_wasi, METH_NOARGS, "Resolve the WASI functions (wasmtime-py's library only)."},
    {NULL},
};

PyTypeObject LibraryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasmlab._native.Library",
    .tp_basicsize = sizeof(LibraryObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The wasmtime C API functions the driver calls, resolved from one libwasmtime.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Library_init,
    .tp_dealloc = (destructor)Library_dealloc,
    .tp_methods = Library_methods,
};

/* ---- Engine: an engine made in a Library of its own (another release's), for the driver ---- */

/* A dict of name -> integer (or, for `as_bool`, truth) as knobs: their count (-1 for None), or -2 with an exception set.
 * The names are borrowed from the dict, alive while it is. */
static int knobs_of(PyObject *dict, const char *what, int as_bool, Knob **out) {
    *out = NULL;
    if (dict == Py_None)
        return -1;
    if (!PyDict_Check(dict)) {
        PyErr_Format(PyExc_TypeError, "%s", what);
        return -2;
    }
    Knob *knobs = PyMem_Calloc((size_t)PyDict_GET_SIZE(dict) + 1, sizeof(Knob));
    if (knobs == NULL) { PyErr_NoMemory(); return -2; }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    int n = 0;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        knobs[n].name = PyUnicode_AsUTF8(key);
        knobs[n].value = as_bool ? (uint64_t)(PyObject_IsTrue(value) == 1) : (uint64_t)PyLong_AsUnsignedLongLong(value);
        if (knobs[n].name == NULL || PyErr_Occurred()) { PyMem_Free(knobs); return -2; }
        n++;
    }
    *out = knobs;
    return n;
}

/* Engine(library, pooling=None, features=None): on-demand, or pooling with each knob of the dict set (see engine.h);
 * features: a dict of WebAssembly proposal -> bool (e.g. exceptions, which releases before 46 leave off and before 40
 * cannot turn on).  A function the release lacks (the pooling ones before 35) is a LookupError naming it. */
static int Engine_init(EngineObject *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"library", "pooling", "features", NULL};
    PyObject *library, *pooling = Py_None, *features = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|OO", keywords, &LibraryType, &library, &pooling, &features))
        return -1;
    Knob *feature_knobs, *pooling_knobs = NULL;
    int nfeatures = knobs_of(features, "features must be a dict of proposal -> bool", 1, &feature_knobs);
    int npooling = nfeatures < -1 ? -2 : knobs_of(pooling, "pooling must be a dict of knob -> integer", 0, &pooling_knobs);
    LibraryObject *lib = (LibraryObject *)library;
    char missing[160] = "";
    if (npooling >= -1)
        self->engine = engine_new(lib->handle, pooling_knobs, npooling, feature_knobs, nfeatures < 0 ? 0 : nfeatures,
                                  &self->engine_delete, missing, sizeof missing);
    PyMem_Free(feature_knobs);
    PyMem_Free(pooling_knobs);
    if (npooling < -1)
        return -1;
    if (self->engine == NULL) {
        if (missing[0])
            PyErr_Format(PyExc_LookupError, "libwasmtime %S has no function %s", lib->path, missing);
        else
            PyErr_SetString(PyExc_RuntimeError, "wasm_engine_new_with_config returned no engine");
        return -1;
    }
    Py_INCREF(library);
    self->library = lib;
    return 0;
}

static void Engine_dealloc(EngineObject *self) {
    if (self->engine != NULL)
        self->engine_delete(self->engine);
    Py_XDECREF(self->library);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Engine_address(EngineObject *self, void *closure) {
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)self->engine);
}

/* The error of a module that does not compile as a ValueError with wasmtime's message (deleted). */
static void compile_error(const Api *api, wasmtime_error_t *err) {
    wasm_byte_vec_t message = {0, NULL};
    api->wasmtime_error_message(err, &message);
    /* PyErr_Format has no %.*s: the message becomes a str first (it is not NUL-terminated). */
    PyObject *text = PyUnicode_DecodeUTF8(message.data ? message.data : "", (Py_ssize_t)message.size, "replace");
    if (text != NULL) {
        PyErr_Format(PyExc_ValueError, "the module does not compile: %U", text);
        Py_DECREF(text);
    }
    api->wasm_byte_vec_delete(&message);
    api->wasmtime_error_delete(err);
}

/* compile(wasm, repeats) -> [ns, ...]: wasmtime_module_new on this engine, `repeats` times (each module deleted), the GIL
 * released; a module that does not compile is a ValueError with wasmtime's message. */
static PyObject *Engine_compile(EngineObject *self, PyObject *args) {
    Py_buffer wasm;
    int repeats = 1;
    if (!PyArg_ParseTuple(args, "y*|i", &wasm, &repeats))
        return NULL;
    if (repeats < 1) {
        PyErr_Format(PyExc_ValueError, "repeats = %d; allowed: >= 1", repeats);
        PyBuffer_Release(&wasm);
        return NULL;
    }
    const Api *api = &self->library->api;
    int64_t *times = calloc((size_t)repeats, sizeof(int64_t));
    if (times == NULL) {
        PyBuffer_Release(&wasm);
        return PyErr_NoMemory();
    }
    wasmtime_error_t *err;
    Py_BEGIN_ALLOW_THREADS
    err = engine_compile_times(api, self->engine, (const uint8_t *)wasm.buf, (size_t)wasm.len, repeats, times);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&wasm);
    PyObject *result = NULL;
    if (err != NULL) {
        compile_error(api, err);
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

PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasmlab._native.Engine",
    .tp_basicsize = sizeof(EngineObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An engine made through one Library's own functions (on-demand, or pooling with the given knobs).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Engine_init,
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_getset = Engine_getset,
    .tp_methods = Engine_methods,
};
