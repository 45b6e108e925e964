/* wasmlab._native.Driver: the request loop (request_loop.c) driven from Python, with the GIL released while a block
 * runs.  What it serves is added in driver_inputs.c. */
#include "glue.h"

#include "component_loop.h"

#include "program.h"

/* The engine argument: an Engine of the same library (kept alive), or a wasm_engine_t address.  NULL with an exception set. */
static wasm_engine_t *engine_argument(DriverObject *self, PyObject *library, PyObject *engine_object) {
    unsigned long long engine;
    if (PyObject_TypeCheck(engine_object, &EngineType)) {
        if (((EngineObject *)engine_object)->library != (LibraryObject *)library) {
            PyErr_SetString(PyExc_ValueError, "the engine was made by another library than the driver's");
            return NULL;
        }
        engine = (unsigned long long)(uintptr_t)((EngineObject *)engine_object)->engine;
        Py_INCREF(engine_object);
        self->engine_owner = engine_object;
    } else {
        engine = PyLong_AsUnsignedLongLong(engine_object);
        if (PyErr_Occurred())
            return NULL;
    }
    if (engine == 0)
        PyErr_SetString(PyExc_ValueError, "engine is a null pointer");
    return (wasm_engine_t *)(uintptr_t)engine;
}

static int Driver_init(DriverObject *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"library", "engine", "cache_capacity", "pre", "linker", "fuel", "epoch_ticks", "limiter",
                               "wait_ns", "reuse", NULL};
    PyObject *library, *engine_object;
    unsigned long long linker = 0, epoch_ticks = 0;
    int capacity = 0, pre = 0;
    long long fuel = -1, wait_ns = -1;
    int reuse = 1;
    PyObject *limiter = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O|ipKLKOLi", keywords, &LibraryType, &library, &engine_object, &capacity,
                                     &pre, &linker, &fuel, &epoch_ticks, &limiter, &wait_ns, &reuse))
        return -1;
    wasm_engine_t *engine = engine_argument(self, library, engine_object);
    if (engine == NULL)
        return -1;
    if (capacity < 0 || capacity > (1 << 20)) {
        PyErr_Format(PyExc_ValueError, "cache_capacity = %d is out of range; allowed: 0 to 1048576", capacity);
        return -1;
    }
    if (reuse < 1) {
        PyErr_Format(PyExc_ValueError, "reuse = %d is out of range; allowed: an integer >= 1", reuse);
        return -1;
    }
    int64_t limits[5];
    if (limiter != Py_None && !PyArg_ParseTuple(limiter, "LLLLL", &limits[0], &limits[1], &limits[2], &limits[3], &limits[4]))
        return -1;
    Py_INCREF(library);
    self->library = (LibraryObject *)library;
    if (driver_init(&self->core, &self->library->api, engine, capacity, pre, (wasmtime_linker_t *)(uintptr_t)linker) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    self->core.fuel = fuel;
    self->core.epoch_ticks = epoch_ticks;
    self->core.wait_ns = wait_ns;
    self->core.reuse = reuse;
    if (limiter != Py_None) {
        memcpy(self->core.limiter, limits, sizeof limits);
        self->core.limited = 1;
    }
    return 0;
}

static void Driver_dealloc(DriverObject *self) {
    driver_clear(&self->core);
    Py_XDECREF(self->engine_owner); /* after the modules made on it are gone */
    Py_XDECREF(self->library);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

Workload *workload_at(DriverObject *self, PyObject *arg) {
    long index = PyLong_AsLong(arg);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    if (index < 0 || index >= self->core.nworkloads) {
        PyErr_Format(PyExc_IndexError, "workload index %ld; allowed: 0 to %d", index, self->core.nworkloads - 1);
        return NULL;
    }
    return &self->core.workloads[index];
}

/* first_output(i) -> (stdout, stderr, files) of workload i's first request, or None before it: what later ones must
 * equal (files: the listing of its writable directories, records as snapshot_dir writes them). */
static PyObject *Driver_first_output(DriverObject *self, PyObject *arg) {
    Workload *w = workload_at(self, arg);
    if (w == NULL)
        return NULL;
    if (w->wasi == NULL || !w->wasi->learned)
        Py_RETURN_NONE;
#define OUTPUT(k) (const char *)(w->wasi->first_out[k] ? (char *)w->wasi->first_out[k] : ""), (Py_ssize_t)w->wasi->first_len[k]
    return Py_BuildValue("(y#y#y#)", OUTPUT(OUT_STDOUT), OUTPUT(OUT_STDERR), OUTPUT(OUT_FILES));
#undef OUTPUT
}

/* first_reads(i) -> tuple of bytes, or None before workload i's first request: what every later request is compared with. */
static PyObject *Driver_first_reads(DriverObject *self, PyObject *arg) {
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

/* The buffers of one run() call: the Python objects' views, and the block they describe. */
typedef struct {
    Py_buffer indices, records, stamps, schedule, steps;
    int have_stamps, have_schedule, have_steps;
} Views;

/* An optional buffer (None: none): 0, or -1 with an exception set. */
static int optional_view(PyObject *object, Py_buffer *view, int flags, int *have) {
    if (object == Py_None)
        return 0;
    if (PyObject_GetBuffer(object, view, flags) < 0)
        return -1;
    *have = 1;
    return 0;
}

static void release_views(Views *v) {
    PyBuffer_Release(&v->indices);
    PyBuffer_Release(&v->records);
    if (v->have_stamps) PyBuffer_Release(&v->stamps);
    if (v->have_schedule) PyBuffer_Release(&v->schedule);
    if (v->have_steps) PyBuffer_Release(&v->steps);
}

/* The block the views describe, every size and index checked: 0, or -1 with an exception set. */
static int block_of(DriverObject *self, Views *v, Block *block) {
    Py_ssize_t n = v->indices.len / (Py_ssize_t)sizeof(int32_t);
    if (v->indices.len % (Py_ssize_t)sizeof(int32_t) != 0 || v->records.len < n * RECORD_WORDS * (Py_ssize_t)sizeof(int64_t) ||
        (v->have_stamps && v->stamps.len < n * STAMPS * (Py_ssize_t)sizeof(int64_t)) ||
        (v->have_schedule && v->schedule.len < n * (Py_ssize_t)sizeof(int64_t)) ||
        (v->have_steps && v->steps.len < n * STEP_STAMPS * (Py_ssize_t)sizeof(int64_t))) {
        PyErr_SetString(PyExc_ValueError,
                        "indices must be int32 and records (7 int64 per request), stamps (8), schedule (1) and steps (65) large enough");
        return -1;
    }
    const int32_t *which = (const int32_t *)v->indices.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (which[i] < 0 || which[i] >= self->core.nworkloads) {
            PyErr_Format(PyExc_IndexError, "workload index %d; allowed: 0 to %d", which[i], self->core.nworkloads - 1);
            return -1;
        }
    }
    block->which = which;
    block->n = (size_t)n;
    block->records = (int64_t *)v->records.buf;
    block->stamps = v->have_stamps ? (int64_t *)v->stamps.buf : NULL;
    block->due = v->have_schedule ? (const int64_t *)v->schedule.buf : NULL;
    block->steps = v->have_steps ? (int64_t *)v->steps.buf : NULL;
    return 0;
}

/* run(indices, records, stamps=None, schedule=None, steps=None) -> (wall_ns, first failure's message or None)
 *
 * indices: int32 buffer of workload indices, one per request; records: int64 buffer of 7 words per request (ns, outcome,
 * detail, memory bytes, the open-loop generator's lateness, fresh instance, carried over); stamps: int64 buffer of 8 per request, or None; schedule:
 * int64 buffer of each request's due time in ns after the block's start (open-loop load), or None (each starts when the
 * last ends); steps: int64 buffer of STEP_STAMPS per request for a recipe's step stamps (phased mode), or None.  The GIL
 * is released while the block runs (driver_serve_block: where a block stops, and what it writes). */
static PyObject *Driver_run(DriverObject *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"indices", "records", "stamps", "schedule", "steps", NULL};
    Views v = {0};
    PyObject *stamps = Py_None, *schedule = Py_None, *steps = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*w*|OOO", keywords, &v.indices, &v.records, &stamps, &schedule, &steps))
        return NULL;
    PyObject *result = NULL;
    Block block;
    if (optional_view(steps, &v.steps, PyBUF_WRITABLE, &v.have_steps) < 0 ||
        optional_view(stamps, &v.stamps, PyBUF_WRITABLE, &v.have_stamps) < 0 ||
        optional_view(schedule, &v.schedule, PyBUF_SIMPLE, &v.have_schedule) < 0 || block_of(self, &v, &block) < 0)
        goto out;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the driver is serving a block in another thread; use one driver per thread");
        goto out;
    }
    self->busy = 1;
    int64_t wall;
    Py_BEGIN_ALLOW_THREADS
    wall = driver_serve_block(&self->core, &block);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    result = Py_BuildValue("(Ls)", (long long)wall, self->core.has_message ? self->core.first_message : NULL);
out:
    release_views(&v);
    return result;
}

static PyObject *Driver_take_stats(DriverObject *self, PyObject *unused) {
    Driver *d = &self->core;
    PyObject *stats = Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "hits", (unsigned long long)d->cache.hits, "misses",
                                    (unsigned long long)d->cache.misses, "evictions", (unsigned long long)d->cache.evictions,
                                    "compile_ns", (unsigned long long)d->compile_ns, "waits", (unsigned long long)d->waits,
                                    "wait_ns", (unsigned long long)d->wait_total_ns, "output_checks", (unsigned long long)d->checks,
                                    "output_check_ns", (unsigned long long)d->check_ns, "component_instances",
                                    (unsigned long long)d->instances);
    d->cache.hits = d->cache.misses = d->cache.evictions = d->compile_ns = d->waits = d->wait_total_ns = 0;
    d->checks = d->check_ns = d->instances = 0;
    return stats;
}

static PyObject *Driver_expectation(DriverObject *self, PyObject *arg) {
    const Workload *w = workload_at(self, arg);
    if (w == NULL)
        return NULL;
    if (w->check == CHECK_NONE || (w->check == CHECK_FIRST && !w->learned))
        Py_RETURN_NONE;
    return PyLong_FromLongLong(w->expected);
}

/* differing(index) -> (address, call, request): the component result that last failed its check (a
 * wasmtime_component_val_t the driver owns until the workload's next mismatch or the driver's close), the index of the
 * call that returned it among the request's calls, and the workload's request it came from (counted from 1 on this
 * driver, warm-up included); or None. */
static PyObject *Driver_differing(DriverObject *self, PyObject *arg) {
    const Workload *w = workload_at(self, arg);
    if (w == NULL)
        return NULL;
    const ComponentCall *c = w->component;
    if (c == NULL || !c->has_differing)
        Py_RETURN_NONE;
    return Py_BuildValue("(NnK)", PyLong_FromVoidPtr((void *)&c->differing), (Py_ssize_t)c->differing_call,
                         (unsigned long long)c->differing_request);
}

static PyObject *Driver_cached(DriverObject *self, PyObject *unused) {
    return PyLong_FromLong(self->core.cache.count);
}

static PyObject *Driver_close(DriverObject *self, PyObject *unused) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the driver is serving a block");
        return NULL;
    }
    driver_clear(&self->core);
    Py_RETURN_NONE;
}

static PyMethodDef Driver_methods[] = {
    {"add_component", (PyCFunction)Driver_add_component, METH_O, "add_component(plan) -> index: a ComponentPlan to serve."},
    {"differing", (PyCFunction)Driver_differing, METH_O, "(address, call, request) of a component's last mismatching result, or None."},
    {"add", (PyCFunction)Driver_add, METH_O,
     "Add what to serve: a wasmlab.host.native_boundary.RequestPlan (its version must be BOUNDARY_VERSION); returns its index."},
    {"first_reads", (PyCFunction)Driver_first_reads, METH_O, "The first request's reads of recipe workload i (None before it)."},
    {"first_output", (PyCFunction)Driver_first_output, METH_O, "The first request's stdout, stderr and written files of WASI workload i."},
    {"run", (PyCFunction)(void (*)(void))Driver_run, METH_VARARGS | METH_KEYWORDS, "Serve a block of requests (see the source)."},
    {"take_stats", (PyCFunction)Driver_take_stats, METH_NOARGS, "Cache, pool-wait, output-check and component-instance counters since the last call, then zeroed."},
    {"cached", (PyCFunction)Driver_cached, METH_NOARGS, "How many compiled modules the cache holds."},
    {"expectation", (PyCFunction)Driver_expectation, METH_O,
     "What workload i's results are checked against: the expected value or the learned first result (None: not yet, or unchecked)."},
    {"close", (PyCFunction)Driver_close, METH_NOARGS, "Delete every cached module, InstancePre and own linker."},
    {NULL},
};

PyTypeObject DriverType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasmlab._native.Driver",
    .tp_basicsize = sizeof(DriverObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Serves blocks of whole requests on one engine, with the GIL released (see wasmlab/native/request_loop.h).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Driver_init,
    .tp_dealloc = (destructor)Driver_dealloc,
    .tp_methods = Driver_methods,
};
