/* The Python side of the driver: the extension's types over the core (request_loop.h and the rest, none of which include
 * Python.h).  Only the glue files (module.c, library_type.c, driver_type.c, driver_inputs.c) include this header. */
#ifndef WASMLAB_GLUE_H
#define WASMLAB_GLUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The version of the structures the glue reads (wasmlab/host/native_boundary.py's BOUNDARY_VERSION): both change together. */
#define BOUNDARY_VERSION 8

#include "component_api.h"
#include "engine.h"
#include "library.h"
#include "request_loop.h"

typedef struct {
    PyObject_HEAD
    void *handle;
    int owned; /* opened here or borrowed from wasmtime-py; either way it stays mapped (see Library_dealloc) */
    Api api;
    PyObject *path;
    ComponentApi components;       /* resolved when the library has them all */
    const char *component_missing; /* else the first one it lacks */
} LibraryObject;

typedef struct {
    PyObject_HEAD
    LibraryObject *library;
    wasm_engine_t *engine;
    engine_delete_fn engine_delete;
} EngineObject;

typedef struct {
    PyObject_HEAD
    Driver core;
    LibraryObject *library; /* whose Api core.api points into: kept alive while the driver is */
    PyObject *engine_owner; /* an Engine object whose engine this driver uses, kept alive while the driver is */
    int busy;
} DriverObject;

extern PyTypeObject LibraryType;
extern PyTypeObject EngineType;
extern PyTypeObject DriverType;

/* driver_inputs.c: add(plan) -> index, a RequestPlan (wasmlab.host.native_boundary) read into a Workload. */
PyObject *Driver_add(DriverObject *self, PyObject *plan);
PyObject *added(DriverObject *self, Workload *w);
/* The workload a Python index names, or NULL with IndexError (or the conversion's error) set. */
Workload *workload_at(DriverObject *self, PyObject *arg);

/* driver_inputs.c's readers, shared with component_inputs.c: obj.version is BOUNDARY_VERSION (0, or -1 with a
 * ValueError); obj.name as an integer; a NUL-terminated copy of a bytes object (NULL with an exception set). */
int versioned(PyObject *obj, const char *what);
int int_attr(PyObject *obj, const char *name, long long *out);
char *copy_of(PyObject *item, size_t *len, const char *what);
/* A copy of the bytes attribute obj.name, `what` naming it in an error: as copy_of. */
char *bytes_attr_as(PyObject *obj, const char *name, size_t *len, const char *what);
/* A WasiSpec read into a new spec (a core command's, or a component command's), with the exit status that means success:
 * NULL with an exception set. */
WasiSpec *wasi_of(PyObject *obj, int expected_exit);

/* component_inputs.c: add_component(plan) -> index, a ComponentPlan (wasmlab.host.native_boundary) read into a
 * Workload whose component call C serves. */
PyObject *Driver_add_component(DriverObject *self, PyObject *plan);

#endif
