/* What a Driver serves for a component, read from Python: a ComponentPlan, its ComponentCallPlans and their ComponentValue trees
 * (wasmlab/host/native_boundary.py), by attribute name, each refused if its version is not BOUNDARY_VERSION.  The trees
 * are built here once, in memory of our own (malloc), and freed by cvalue_free (component_loop.c). */
#include "glue.h"

#include "component_loop.h"
#include "component_stubs.h"

#define MAX_DEPTH 64 /* a deeper tree is refused rather than risking the C stack on a hostile value */

static int value_from(PyObject *obj, wasmtime_component_val_t *out, int depth);

static int name_from(PyObject *item, wasm_byte_vec_t *out) {
    size_t len = 0;
    char *data = copy_of(item, &len, "a component value's name");
    if (data == NULL)
        return -1;
    out->size = len;
    out->data = data;
    return 0;
}

/* obj.name, which must be a tuple: a new reference, or NULL with an exception set. */
static PyObject *tuple_attr(PyObject *obj, const char *name) {
    PyObject *value = PyObject_GetAttrString(obj, name);
    if (value != NULL && !PyTuple_Check(value)) {
        PyErr_Format(PyExc_TypeError, "ComponentValue.%s is %s; allowed: tuple", name, Py_TYPE(value)->tp_name);
        Py_CLEAR(value);
    }
    return value;
}

/* A zeroed array of `n` values (at least one slot, so that an empty list has a non-NULL pointer): NULL on no memory. */
static void *zeroed(size_t n, size_t size) {
    void *out = calloc(n ? n : 1, size);
    if (out == NULL)
        PyErr_NoMemory();
    return out;
}

/* The tuple's values into a new array; its size set first so that a partial tree frees cleanly. */
static int items_from(PyObject *items, wasmtime_component_val_t **data, size_t *size, int depth) {
    size_t n = (size_t)PyTuple_GET_SIZE(items);
    if ((*data = zeroed(n, sizeof **data)) == NULL)
        return -1;
    *size = n;
    for (size_t i = 0; i < n; i++)
        if (value_from(PyTuple_GET_ITEM(items, (Py_ssize_t)i), &(*data)[i], depth + 1) < 0) return -1;
    return 0;
}

/* A variant's, option's or result's payload: NULL for none, else one value of its own. */
static int payload_from(PyObject *items, wasmtime_component_val_t **out, int depth) {
    *out = NULL;
    if (PyTuple_GET_SIZE(items) == 0)
        return 0;
    if ((*out = zeroed(1, sizeof **out)) == NULL)
        return -1;
    return value_from(PyTuple_GET_ITEM(items, 0), *out, depth + 1);
}

static int record_from(PyObject *items, PyObject *names, wasmtime_component_valrecord_t *out, int depth) {
    size_t n = (size_t)PyTuple_GET_SIZE(items);
    if ((size_t)PyTuple_GET_SIZE(names) != n) {
        PyErr_SetString(PyExc_ValueError, "a record ComponentValue has as many names as items");
        return -1;
    }
    if ((out->data = zeroed(n, sizeof *out->data)) == NULL)
        return -1;
    out->size = n;
    for (size_t i = 0; i < n; i++)
        if (name_from(PyTuple_GET_ITEM(names, (Py_ssize_t)i), &out->data[i].name) < 0 ||
            value_from(PyTuple_GET_ITEM(items, (Py_ssize_t)i), &out->data[i].val, depth + 1) < 0) return -1;
    return 0;
}

static int flags_from(PyObject *names, wasmtime_component_valflags_t *out) {
    size_t n = (size_t)PyTuple_GET_SIZE(names);
    if ((out->data = zeroed(n, sizeof *out->data)) == NULL)
        return -1;
    out->size = n;
    for (size_t i = 0; i < n; i++)
        if (name_from(PyTuple_GET_ITEM(names, (Py_ssize_t)i), &out->data[i]) < 0) return -1;
    return 0;
}

/* The parts of one value into `out` by its kind (scalars from their bits). */
static int fill(wasmtime_component_val_t *out, unsigned long long bits, PyObject *text, PyObject *items, PyObject *names, int depth) {
    wasmtime_component_valunion_t *of = &out->of;
    switch (out->kind) {
    case CVAL_BOOL: of->boolean = bits != 0; return 0;
    case CVAL_S8: case CVAL_U8: of->u8 = (uint8_t)bits; return 0;
    case CVAL_S16: case CVAL_U16: of->u16 = (uint16_t)bits; return 0;
    case CVAL_S32: case CVAL_U32: case CVAL_CHAR: case CVAL_F32: of->u32 = (uint32_t)bits; return 0;
    case CVAL_S64: case CVAL_U64: case CVAL_F64: of->u64 = (uint64_t)bits; return 0;
    case CVAL_STRING: case CVAL_ENUM: return name_from(text, &of->string);
    case CVAL_LIST: case CVAL_TUPLE: return items_from(items, &of->list.data, &of->list.size, depth);
    case CVAL_RECORD: return record_from(items, names, &of->record, depth);
    case CVAL_FLAGS: return flags_from(names, &of->flags);
    case CVAL_VARIANT:
        return name_from(text, &of->variant.discriminant) < 0 ? -1 : payload_from(items, &of->variant.val, depth);
    case CVAL_OPTION: return payload_from(items, &of->option, depth);
    case CVAL_RESULT: of->result.is_ok = bits != 0; return payload_from(items, &of->result.val, depth);
    default:
        PyErr_Format(PyExc_ValueError, "ComponentValue kind %d cannot be built on the native path", (int)out->kind);
        return -1;
    }
}

static int value_from(PyObject *obj, wasmtime_component_val_t *out, int depth) {
    memset(out, 0, sizeof *out);
    if (depth > MAX_DEPTH) {
        PyErr_Format(PyExc_ValueError, "a ComponentValue nested deeper than %d", MAX_DEPTH);
        return -1;
    }
    long long kind = 0;
    if (versioned(obj, "ComponentValue") < 0 || int_attr(obj, "kind", &kind) < 0)
        return -1;
    PyObject *number = PyObject_GetAttrString(obj, "number");
    unsigned long long bits = number ? PyLong_AsUnsignedLongLong(number) : 0;
    Py_XDECREF(number);
    if (PyErr_Occurred())
        return -1;
    PyObject *text = PyObject_GetAttrString(obj, "text"), *items = tuple_attr(obj, "items"), *names = tuple_attr(obj, "names");
    int rc = -1;
    if (text != NULL && items != NULL && names != NULL && kind >= 0 && kind <= CVAL_FLAGS) {
        out->kind = (uint8_t)kind;
        rc = fill(out, bits, text, items, names, depth);
    } else if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "ComponentValue kind %lld is not a component value kind", kind);
    }
    Py_XDECREF(text);
    Py_XDECREF(items);
    Py_XDECREF(names);
    return rc;
}

/* One ComponentCallPlan into `s`: its entry, argument trees, result and check.  0, or -1 with an exception set. */
static int call_into(PyObject *call, ComponentStep *s) {
    if (versioned(call, "ComponentCallPlan") < 0)
        return -1;
    s->entry = bytes_attr_as(call, "entry", &s->entry_len, "ComponentCallPlan.entry");
    PyObject *args = s->entry ? tuple_attr(call, "args") : NULL;
    int ok = args != NULL && items_from(args, &s->args, &s->nargs, 0) == 0;
    Py_XDECREF(args);
    long long returns = 0, check = 0;
    if (!ok || int_attr(call, "returns", &returns) < 0 || int_attr(call, "check", &check) < 0)
        return -1;
    if (check != CHECK_NONE && check != CHECK_EXPECTED && check != CHECK_FIRST) {
        PyErr_Format(PyExc_ValueError, "ComponentCallPlan.check %lld; allowed: CHECK_NONE, CHECK_EXPECTED, CHECK_FIRST", check);
        return -1;
    }
    s->returns = returns != 0;
    s->check = (int)check;
    if (check != CHECK_EXPECTED)
        return 0;
    PyObject *v = PyObject_GetAttrString(call, "expected");
    ok = v != NULL && value_from(v, &s->expected, 0) == 0;
    Py_XDECREF(v);
    return ok ? 0 : -1;
}

/* The plan's component and its calls into `w` (its ComponentCall made here): 0, or -1 with an exception set. */
static int plan_into(PyObject *plan, Workload *w, const ComponentApi *capi) {
    w->wasm = (uint8_t *)bytes_attr_as(plan, "component", &w->wasm_len, "ComponentPlan.component");
    if (w->wasm == NULL)
        return -1;
    PyObject *v = PyObject_GetAttrString(plan, "sha256");
    int ok = v != NULL && PyBytes_Check(v) && PyBytes_GET_SIZE(v) == 32;
    if (ok) memcpy(w->sha256, PyBytes_AS_STRING(v), 32);
    Py_XDECREF(v);
    if (!ok) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "ComponentPlan.sha256 is 32 bytes");
        return -1;
    }
    PyObject *calls = tuple_attr(plan, "calls");
    if (calls == NULL)
        return -1;
    size_t n = (size_t)PyTuple_GET_SIZE(calls);
    if (n == 0) {
        Py_DECREF(calls);
        PyErr_SetString(PyExc_ValueError, "ComponentPlan.calls is empty; a request makes at least one call");
        return -1;
    }
    if ((w->component = component_call_new(capi, n)) == NULL) {
        Py_DECREF(calls);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t k = 0; ok && k < n; k++)
        ok = call_into(PyTuple_GET_ITEM(calls, (Py_ssize_t)k), &w->component->calls[k]) == 0;
    Py_DECREF(calls);
    long long wasi = 0, wasi_http = 0, instantiate_only = 0;
    if (!ok || int_attr(plan, "wasi", &wasi) < 0 || int_attr(plan, "wasi_http", &wasi_http) < 0 ||
        int_attr(plan, "instantiate_only", &instantiate_only) < 0)
        return -1;
    if (wasi_http && capi->http_missing != NULL) {
        PyErr_Format(PyExc_LookupError, "this libwasmtime has no function %s: it serves no wasi:http proxy", capi->http_missing);
        return -1;
    }
    w->component->wasi = wasi != 0 || wasi_http != 0; /* wasi:http's context needs a WASI one on the store */
    w->component->wasi_http = wasi_http != 0;
    w->component->instantiate_only = instantiate_only != 0;
    return 0;
}

/* A component command's plan (plan.command a WasiSpec, plan.exit_status) into `w`: its context, the command's run judged
 * by its exit status and outputs.  0 (None: not a command), or -1 with an exception set. */
static int command_into(PyObject *plan, Workload *w, ComponentCall *c) {
    PyObject *spec = PyObject_GetAttrString(plan, "command");
    long long exit_status = 0;
    int status = spec == NULL || int_attr(plan, "exit_status", &exit_status) < 0 ? -1 : 0;
    if (status == 0 && spec != Py_None) {
        w->wasi = wasi_of(spec, (int)exit_status);
        c->command = 1;
        c->wasi = 1;
        status = w->wasi == NULL ? -1 : 0;
    }
    Py_XDECREF(spec);
    return status;
}

/* One ComponentStubPlan into `s`: its instances, name and constant.  0, or -1 with an exception set (what was read is
 * freed with the stubs). */
static int stub_from(PyObject *obj, ComponentStub *s) {
    if (versioned(obj, "ComponentStubPlan") < 0)
        return -1;
    s->name = bytes_attr_as(obj, "name", &s->name_len, "ComponentStubPlan.name");
    PyObject *path = s->name ? tuple_attr(obj, "instance") : NULL;
    if (path == NULL)
        return -1;
    size_t depth = (size_t)PyTuple_GET_SIZE(path);
    s->instance = zeroed(depth, sizeof *s->instance);
    s->instance_len = s->instance ? zeroed(depth, sizeof *s->instance_len) : NULL;
    int ok = s->instance_len != NULL;
    if (ok) s->depth = depth;
    for (size_t i = 0; ok && i < depth; i++)
        ok = (s->instance[i] = copy_of(PyTuple_GET_ITEM(path, (Py_ssize_t)i), &s->instance_len[i], "ComponentStubPlan.instance")) != NULL;
    Py_DECREF(path);
    PyObject *v = ok ? PyObject_GetAttrString(obj, "result") : NULL;
    if (v == NULL)
        return -1;
    s->returns = v != Py_None;
    ok = v == Py_None || value_from(v, &s->result, 0) == 0;
    Py_DECREF(v);
    return ok ? 0 : -1;
}

/* plan.stubs defined on the driver's component linker, unless it has them (every plan of a driver carries the same):
 * 0, or -1 with an exception set. */
static int stubs_into(PyObject *plan, Driver *d, const ComponentApi *capi) {
    if (d->component_stubs)
        return 0;
    PyObject *items = tuple_attr(plan, "stubs");
    if (items == NULL)
        return -1;
    size_t n = (size_t)PyTuple_GET_SIZE(items);
    if (n > 0 && capi->stubs_missing != NULL) {
        Py_DECREF(items);
        PyErr_Format(PyExc_LookupError, "this libwasmtime has no function %s: it serves no stubs of component imports",
                     capi->stubs_missing);
        return -1;
    }
    ComponentStub *stubs = n ? zeroed(n, sizeof *stubs) : NULL;
    int ok = n == 0 || stubs != NULL;
    for (size_t k = 0; ok && k < n; k++)
        ok = stub_from(PyTuple_GET_ITEM(items, (Py_ssize_t)k), &stubs[k]) == 0;
    Py_DECREF(items);
    if (ok && component_stubs_define(d, capi, stubs, n) < 0) {
        PyErr_Format(PyExc_RuntimeError, "the component linker's stubs: %s", d->has_message ? d->first_message : "not defined");
        ok = 0;
    }
    component_stubs_free(stubs, n);
    return ok ? 0 : -1;
}

PyObject *Driver_add_component(DriverObject *self, PyObject *plan) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the driver is serving a block");
        return NULL;
    }
    LibraryObject *library = self->library;
    if (!library->components.resolved) {
        PyErr_Format(PyExc_LookupError, "libwasmtime %S has no function %s: it serves no components", library->path,
                     library->component_missing);
        return NULL;
    }
    if (versioned(plan, "ComponentPlan") < 0)
        return NULL;
    Workload w;
    memset(&w, 0, sizeof w);
    if (plan_into(plan, &w, &library->components) < 0 || command_into(plan, &w, w.component) < 0) {
        workload_free(&w);
        return NULL;
    }
    int wasi = w.component->wasi, wasi_http = w.component->wasi_http;
    if (wasi && !library->api.wasi_resolved) {
        workload_free(&w);
        PyErr_SetString(PyExc_LookupError, "a WASI component needs the library's WASI functions (Library.enable_wasi())");
        return NULL;
    }
    if (component_driver_ready(&self->core, &library->components, wasi, wasi_http) < 0) {
        workload_free(&w);
        PyErr_Format(PyExc_RuntimeError, "the component linker: %s",
                     self->core.has_message ? self->core.first_message : "wasmtime_component_linker_new failed");
        return NULL;
    }
    if (stubs_into(plan, &self->core, &library->components) < 0) {
        workload_free(&w);
        return NULL;
    }
    return added(self, &w);
}
