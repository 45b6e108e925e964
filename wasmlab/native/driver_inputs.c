/* What a Driver serves, read from Python: a core module's call, a recipe's program, a WASI context. */
#include "glue.h"

#include "program.h"

/* The kind a one-letter code names: 'i' i32, 'I' i64, anything else none. */
static uint8_t kind_of(char code) {
    return code == 'I' ? KIND_I64 : code == 'i' ? KIND_I32 : KIND_NONE;
}

/* A copy of `len` bytes with a NUL after them; NULL with MemoryError set. */
static void *copy_bytes(const void *data, size_t len) {
    char *out = malloc(len + 1);
    if (out == NULL)
        return PyErr_NoMemory();
    memcpy(out, data, len);
    out[len] = '\0';
    return out;
}

/* The call's arguments and their kinds into `w`: 0, or -1 with an exception set. */
static int arguments_of(Workload *w, PyObject *values, const char *kinds) {
    Py_ssize_t nargs = PyTuple_GET_SIZE(values);
    w->nargs = (int)nargs;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        w->args[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(values, i));
        if (w->args[i] == -1 && PyErr_Occurred())
            return -1;
        if (kinds[i] != 'i' && kinds[i] != 'I') {
            PyErr_Format(PyExc_ValueError, "argument kind %c; allowed: i (i32), I (i64)", kinds[i]);
            return -1;
        }
        w->arg_kinds[i] = kind_of(kinds[i]);
    }
    w->nslots = (size_t)(nargs > 1 ? nargs : 1);
    return 0;
}

/* The workload filled and added (its index), or -1 with an exception set (nothing kept). */
static int add(DriverObject *self, Py_buffer *wasm, Py_buffer *sha, const char *entry, size_t entry_len, PyObject *values,
               const char *kinds, const char *result_kind, int check, long long expected, Program *program) {
    Workload w;
    memset(&w, 0, sizeof w);
    w.program = program;
    w.wasm = copy_bytes(wasm->buf, (size_t)wasm->len);
    w.entry = w.wasm ? copy_bytes(entry, entry_len) : NULL;
    if (w.entry == NULL || arguments_of(&w, values, kinds) < 0) {
        workload_free(&w);
        return -1;
    }
    w.wasm_len = (size_t)wasm->len;
    memcpy(w.sha256, sha->buf, 32);
    w.entry_len = entry_len;
    w.result_kind = kind_of(result_kind[0]);
    w.check = check;
    w.expected = expected;
    int index = driver_add(&self->core, &w);
    if (index < 0) {
        workload_free(&w);
        PyErr_NoMemory();
    }
    return index;
}

/* The checks every added workload passes: 0, or -1 with an exception set. */
static int addable(DriverObject *self, Py_buffer *sha, Py_ssize_t nargs, const char *kinds, const char *result_kind) {
    if (sha->len != 32) {
        PyErr_Format(PyExc_ValueError, "sha256 is %zd bytes; allowed: 32", sha->len);
        return -1;
    }
    if (nargs >= MAX_SLOTS || (Py_ssize_t)strlen(kinds) != nargs || strlen(result_kind) > 1) {
        PyErr_Format(PyExc_ValueError, "%zd arguments of kinds %s; allowed: fewer than %d, one kind each", nargs, kinds, MAX_SLOTS);
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the driver is serving a block");
        return -1;
    }
    return 0;
}

PyObject *Driver_add_workload(DriverObject *self, PyObject *args, PyObject *kwds) {
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
    if (addable(self, &sha, PyTuple_GET_SIZE(values), kinds, result_kind) == 0) {
        int index = add(self, &wasm, &sha, entry.buf, (size_t)entry.len, values, kinds, result_kind, check, expected, NULL);
        result = index < 0 ? NULL : PyLong_FromLong(index);
    }
    PyBuffer_Release(&wasm);
    PyBuffer_Release(&sha);
    PyBuffer_Release(&entry);
    return result;
}

/* ---- A recipe's program ---- */

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

/* (1, export, ((slot, offset), ...), kinds, result kind, dst, top): 0, or -1 with an exception set. */
static int call_of(PyObject *t, Op *op, Py_ssize_t k) {
    Py_buffer name;
    PyObject *args;
    const char *kinds, *rkind;
    int code;
    if (!PyArg_ParseTuple(t, "iy*O!ssii", &code, &name, &PyTuple_Type, &args, &kinds, &rkind, &op->dst, &op->top))
        return -1;
    op->name = copy_bytes(name.buf, (size_t)name.len);
    op->name_len = (size_t)name.len;
    PyBuffer_Release(&name);
    if (op->name == NULL)
        return -1;
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if (nargs >= MAX_SLOTS || (Py_ssize_t)strlen(kinds) != nargs) {
        PyErr_Format(PyExc_ValueError, "op %zd: %zd arguments of kinds %s; allowed: fewer than %d", k, nargs, kinds, MAX_SLOTS);
        return -1;
    }
    op->nargs = (int)nargs;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (operand_of(PyTuple_GET_ITEM(args, i), &op->args[i]) < 0)
            return -1;
        op->arg_kinds[i] = kinds[i] == 'I' ? KIND_I64 : KIND_I32;
    }
    op->result_kind = kind_of(rkind[0]);
    op->nslots = (size_t)(nargs > 1 ? nargs : 1);
    return 0;
}

/* (2, at, data) a write; (3, at, length, read) a read; (4, at, dst) a u32 load; (5, at, value) a u32 store. */
static int memory_op_of(PyObject *t, Op *op, Py_ssize_t k, int nreads) {
    PyObject *at, *other;
    int code;
    if (op->op == OP_WRITE) {
        Py_buffer data;
        if (!PyArg_ParseTuple(t, "iOy*", &code, &at, &data))
            return -1;
        op->data = copy_bytes(data.buf, (size_t)data.len);
        op->len = (size_t)data.len;
        PyBuffer_Release(&data);
        return op->data == NULL ? -1 : operand_of(at, &op->at);
    }
    int parsed = op->op == OP_READ ? PyArg_ParseTuple(t, "iOOi", &code, &at, &other, &op->read)
                                   : PyArg_ParseTuple(t, "iOO", &code, &at, &other);
    if (!parsed || operand_of(at, &op->at) < 0)
        return -1;
    if (op->op == OP_READ) {
        if (operand_of(other, &op->value) < 0)
            return -1;
        if (op->read < 0 || op->read >= nreads) {
            PyErr_Format(PyExc_ValueError, "op %zd reads into %d; allowed: 0..%d", k, op->read, nreads - 1);
            return -1;
        }
        return 0;
    }
    if (op->op == OP_STORE32)
        return operand_of(other, &op->value);
    op->dst = (int)PyLong_AsLong(other);
    if (op->dst < 0 || op->dst >= MAX_VALUES) {
        PyErr_Format(PyExc_ValueError, "op %zd: bad slot", k);
        return -1;
    }
    return 0;
}

/* Op k of a recipe from its tuple: 0, or -1 with an exception set. */
static int op_of(PyObject *t, Op *op, Py_ssize_t k, int nreads) {
    op->dst = -1;
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) < 3) {
        PyErr_Format(PyExc_ValueError, "op %zd is not a tuple of at least 3", k);
        return -1;
    }
    op->op = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 0));
    int status = 0;
    if (op->op == OP_STAMP)
        status = 0; /* nothing to parse: (6, 0, 0) */
    else if (op->op == OP_CALL)
        status = call_of(t, op, k);
    else if (op->op >= OP_WRITE && op->op <= OP_STORE32)
        status = memory_op_of(t, op, k, nreads);
    else {
        PyErr_Format(PyExc_ValueError, "op %zd: code %d; allowed: 1 call, 2 write, 3 read, 4 load, 5 store32, 6 stamp", k, op->op);
        return -1;
    }
    if (status == 0 && op->dst >= MAX_VALUES) {
        PyErr_Format(PyExc_ValueError, "op %zd: value slot %d; allowed: fewer than %d", k, op->dst, MAX_VALUES);
        return -1;
    }
    return status;
}

/* The program of a recipe's ops (a list of tuples, see op_of): NULL with an exception set. */
static Program *program_of(PyObject *ops, Py_buffer *memory, int nreads) {
    Py_ssize_t nops = PyList_GET_SIZE(ops);
    Program *p = program_new((int)nops, memory->buf, (size_t)memory->len, nreads);
    if (p == NULL)
        return (Program *)PyErr_NoMemory();
    for (Py_ssize_t k = 0; k < nops; k++) {
        p->nops = (int)k + 1;
        if (op_of(PyList_GET_ITEM(ops, k), &p->ops[k], k, nreads) < 0) {
            program_free(p);
            return NULL;
        }
    }
    return p;
}

/* add_recipe(wasm, sha256, ops, memory, nreads, result_kind, check, expected) -> index: a recipe's steps (see program_of),
 * a workload whose one "call" is the program. */
PyObject *Driver_add_recipe(DriverObject *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"wasm", "sha256", "ops", "memory", "nreads", "result_kind", "check", "expected", NULL};
    PyObject *ops;
    Py_buffer memory, wasm, sha;
    int nreads, check;
    const char *result_kind;
    long long expected;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*O!y*isiL", keywords, &wasm, &sha, &PyList_Type, &ops, &memory, &nreads,
                                     &result_kind, &check, &expected))
        return NULL;
    PyObject *result = NULL;
    Program *program = program_of(ops, &memory, nreads);
    PyObject *none = PyTuple_New(0);
    if (program != NULL && none != NULL && addable(self, &sha, 0, "", result_kind) == 0) {
        int index = add(self, &wasm, &sha, "(recipe)", 8, none, "", result_kind, check, expected, program);
        result = index < 0 ? NULL : PyLong_FromLong(index);
    } else {
        program_free(program);
    }
    Py_XDECREF(none);
    PyBuffer_Release(&wasm);
    PyBuffer_Release(&sha);
    PyBuffer_Release(&memory);
    return result;
}

/* ---- A WASI context ---- */

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
PyObject *Driver_set_wasi(DriverObject *self, PyObject *args) {
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
    if (self->core.linker == NULL) {
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
