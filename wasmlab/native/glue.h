/* The Python side of the driver: the extension's types over the core (request_loop.h and the rest, none of which include
 * Python.h).  Only the glue files (module.c, library_type.c, driver_type.c, driver_inputs.c) include this header. */
#ifndef WASMLAB_GLUE_H
#define WASMLAB_GLUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "engine.h"
#include "library.h"
#include "request_loop.h"

typedef struct {
    PyObject_HEAD
    void *handle;
    int owned; /* opened here or borrowed from wasmtime-py; either way it stays mapped (see Library_dealloc) */
    Api api;
    PyObject *path;
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

/* driver_inputs.c: what a Driver serves, read from Python. */
PyObject *Driver_add_workload(DriverObject *self, PyObject *args, PyObject *kwds);
PyObject *Driver_add_recipe(DriverObject *self, PyObject *args, PyObject *kwds);
PyObject *Driver_set_wasi(DriverObject *self, PyObject *args);
/* The workload a Python index names, or NULL with IndexError (or the conversion's error) set. */
Workload *workload_at(DriverObject *self, PyObject *arg);

#endif
