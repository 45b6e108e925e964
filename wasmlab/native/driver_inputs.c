/* What a Driver serves, read from Python: a RequestPlan and the structures in it (wasmlab/host/native_boundary.py), by
 * attribute name, each refused if its version is not BOUNDARY_VERSION. */
#include "glue.h"

#include "program.h"

/* ---- Reading the structures ---- */

/* obj's `version` is this glue's: 0, or -1 with a one-line ValueError naming both. */
int versioned(PyObject *obj, const char *what) {
    PyObject *value = PyObject_GetAttrString(obj, "version");
    long version = value ? PyLong_AsLong(value) : -1;
    Py_XDECREF(value);
    if (PyErr_Occurred())
        return -1;
    if (version != BOUNDARY_VERSION) {
        PyErr_Format(PyExc_ValueError, "%s version %ld; this build of wasmlab._native reads version %d (rebuild the one that is "
                     "stale: pip install -e .)", what, version, BOUNDARY_VERSION);
        return -1;
    }
    return 0;
}

/* obj.name as a C integer: 0, or -1 with an exception set. */
int int_attr(PyObject *obj, const char *name, long long *out) {
    PyObject *value = PyObject_GetAttrString(obj, name);
    *out = value ? PyLong_AsLongLong(value) : -1;
    Py_XDECREF(value);
    return PyErr_Occurred() ? -1 : 0;
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

/* A copy of the bytes object `item` (NUL-terminated, its length in *len if asked); NULL with an exception set. */
char *copy_of(PyObject *item, size_t *len, const char *what) {
    if (!PyBytes_Check(item)) {
        PyErr_Format(PyExc_TypeError, "%s is %s; allowed: bytes", what, Py_TYPE(item)->tp_name);
        return NULL;
    }
    if (len != NULL)
        *len = (size_t)PyBytes_GET_SIZE(item);
    return copy_bytes(PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item));
}

char *bytes_attr_as(PyObject *obj, const char *name, size_t *len, const char *what) {
    PyObject *value = PyObject_GetAttrString(obj, name);
    char *out = value ? copy_of(value, len, what) : NULL;
    Py_XDECREF(value);
    return out;
}

/* A copy of the bytes attribute obj.name, named by its attribute in an error: as copy_of. */
static char *bytes_attr(PyObject *obj, const char *name, size_t *len) {
    return bytes_attr_as(obj, name, len, name);
}

/* The str attribute obj.name (its UTF-8 copied into `out` of `size`): 0, or -1 with an exception set. */
static int str_attr(PyObject *obj, const char *name, char *out, size_t size) {
    PyObject *value = PyObject_GetAttrString(obj, name);
    const char *text = value ? PyUnicode_AsUTF8(value) : NULL;
    if (text != NULL && strlen(text) >= size)
        PyErr_Format(PyExc_ValueError, "%s %R is too long; allowed: fewer than %zu characters", name, value, size);
    else if (text != NULL)
        memcpy(out, text, strlen(text) + 1);
    Py_XDECREF(value);
    return PyErr_Occurred() ? -1 : 0;
}

/* The kind a one-letter code names: 'i' i32, 'I' i64, anything else none. */
static uint8_t kind_of(char code) {
    return code == 'I' ? KIND_I64 : code == 'i' ? KIND_I32 : KIND_NONE;
}

/* ---- A recipe's program ---- */

static int operand_of(PyObject *item, Operand *out) {
    long long offset;
    if (!PyTuple_Check(item)) { /* PyArg_ParseTuple takes a tuple on trust: anything else is a SystemError, not a refusal */
        PyErr_Format(PyExc_TypeError, "an operand is %s; allowed: a (slot, offset) tuple of two integers", Py_TYPE(item)->tp_name);
        return -1;
    }
    if (!PyArg_ParseTuple(item, "iL", &out->slot, &offset))
        return -1;
    out->offset = offset;
    if (out->slot < -1 || out->slot >= MAX_VALUES) {
        PyErr_Format(PyExc_ValueError, "value slot %d; allowed: -1 (a literal) or 0..%d", out->slot, MAX_VALUES - 1);
        return -1;
    }
    return 0;
}

/* The operand attribute obj.name: 0, or -1 with an exception set. */
static int operand_attr(PyObject *obj, const char *name, Operand *out) {
    PyObject *value = PyObject_GetAttrString(obj, name);
    int status = value ? operand_of(value, out) : -1;
    Py_XDECREF(value);
    return status;
}

/* A CallOp: its export, operands and their kinds, result kind, slot and whether it is a step of its own. */
static int call_of(PyObject *call, Op *op, Py_ssize_t k) {
    char kinds[MAX_SLOTS + 1], result_kind[2];
    long long dst, top;
    op->name = bytes_attr(call, "export", &op->name_len);
    if (op->name == NULL || str_attr(call, "kinds", kinds, sizeof kinds) < 0 || str_attr(call, "result_kind", result_kind, sizeof result_kind) < 0 ||
        int_attr(call, "dst", &dst) < 0 || int_attr(call, "top", &top) < 0)
        return -1;
    PyObject *args = PyObject_GetAttrString(call, "args");
    if (args == NULL)
        return -1;
    Py_ssize_t nargs = PyTuple_Check(args) ? PyTuple_GET_SIZE(args) : -1;
    int status = 0;
    if (nargs < 0 || nargs >= MAX_SLOTS || (Py_ssize_t)strlen(kinds) != nargs) {
        PyErr_Format(PyExc_ValueError, "op %zd: %zd arguments of kinds %s; allowed: a tuple of fewer than %d, one kind each", k, nargs,
                     kinds, MAX_SLOTS);
        status = -1;
    }
    for (Py_ssize_t i = 0; status == 0 && i < nargs; i++) {
        status = operand_of(PyTuple_GET_ITEM(args, i), &op->args[i]);
        op->arg_kinds[i] = kinds[i] == 'I' ? KIND_I64 : KIND_I32;
    }
    Py_DECREF(args);
    op->nargs = (int)nargs;
    op->result_kind = kind_of(result_kind[0]);
    op->nslots = (size_t)(nargs > 1 ? nargs : 1);
    op->dst = (int)dst;
    op->top = top != 0;
    return status;
}

/* A WriteOp, ReadOp, LoadOp or StoreOp: 0, or -1 with an exception set. */
static int memory_op_of(PyObject *obj, Op *op, Py_ssize_t k, int nreads) {
    if (operand_attr(obj, "at", &op->at) < 0)
        return -1;
    if (op->op == OP_WRITE) {
        op->data = (uint8_t *)bytes_attr(obj, "data", &op->len);
        return op->data == NULL ? -1 : 0;
    }
    if (op->op == OP_STORE32)
        return operand_attr(obj, "value", &op->value);
    long long number;
    if (op->op == OP_LOAD) {
        if (int_attr(obj, "dst", &number) < 0)
            return -1;
        op->dst = (int)number;
        if (number < 0 || number >= MAX_VALUES) { PyErr_Format(PyExc_ValueError, "op %zd: bad slot", k); return -1; }
        return 0;
    }
    if (operand_attr(obj, "length", &op->value) < 0 || int_attr(obj, "read", &number) < 0)
        return -1;
    op->read = (int)number;
    if (number < 0 || number >= nreads) {
        PyErr_Format(PyExc_ValueError, "op %zd reads into %lld; allowed: 0..%d", k, number, nreads - 1);
        return -1;
    }
    return 0;
}

/* Op k of a recipe (its class's `code` says which): 0, or -1 with an exception set. */
static int op_of(PyObject *obj, Op *op, Py_ssize_t k, int nreads) {
    long long code;
    op->dst = -1;
    if (int_attr(obj, "code", &code) < 0)
        return -1;
    op->op = (int)code;
    int status = 0;
    if (op->op == OP_CALL)
        status = call_of(obj, op, k);
    else if (op->op >= OP_WRITE && op->op <= OP_STORE32)
        status = memory_op_of(obj, op, k, nreads);
    else if (op->op != OP_STAMP) {
        PyErr_Format(PyExc_ValueError, "op %zd: code %d; allowed: 1 call, 2 write, 3 read, 4 load, 5 store32, 6 stamp", k, op->op);
        return -1;
    }
    if (status == 0 && op->dst >= MAX_VALUES) {
        PyErr_Format(PyExc_ValueError, "op %zd: value slot %d; allowed: fewer than %d", k, op->dst, MAX_VALUES);
        return -1;
    }
    return status;
}

/* Op k reads only value slots an earlier op wrote (`written`), then marks the slot it writes: 0, or -1 with a ValueError
 * (an unwritten slot would be read uninitialised on every request). */
static int slots_written(const Op *op, Py_ssize_t k, uint8_t *written) {
    const Operand *used[MAX_SLOTS + 2];
    int n = 0;
    if (op->op == OP_CALL)
        for (int i = 0; i < op->nargs; i++) used[n++] = &op->args[i];
    else if (op->op != OP_STAMP)
        used[n++] = &op->at;
    if (op->op == OP_READ || op->op == OP_STORE32)
        used[n++] = &op->value;
    for (int i = 0; i < n; i++)
        if (used[i]->slot >= 0 && !written[used[i]->slot]) {
            PyErr_Format(PyExc_ValueError, "op %zd reads value slot %d, which no earlier op writes", k, used[i]->slot);
            return -1;
        }
    if (op->dst >= 0)
        written[op->dst] = 1;
    return 0;
}

/* A RecipeProgram: NULL with an exception set. */
static Program *program_of(PyObject *recipe) {
    long long nreads;
    size_t memory_len;
    if (versioned(recipe, "RecipeProgram") < 0 || int_attr(recipe, "nreads", &nreads) < 0)
        return NULL;
    char *memory = bytes_attr(recipe, "memory", &memory_len);
    PyObject *ops = memory ? PyObject_GetAttrString(recipe, "ops") : NULL;
    PyObject *sequence = ops ? PySequence_Fast(ops, "a RecipeProgram's ops are a sequence") : NULL;
    Py_ssize_t nops = sequence ? PySequence_Fast_GET_SIZE(sequence) : 0;
    if (sequence != NULL && (nreads < 0 || nreads > nops || nops > INT_MAX)) { /* a read per read op, at most */
        PyErr_Format(PyExc_ValueError, "RecipeProgram.nreads %lld of %zd ops; allowed: 0..%zd", nreads, nops, nops);
        Py_CLEAR(sequence);
    }
    Program *p = sequence ? program_new((int)nops, memory, memory_len, (int)nreads) : NULL;
    if (sequence != NULL && p == NULL)
        PyErr_NoMemory();
    uint8_t written[MAX_VALUES] = {0};
    for (Py_ssize_t k = 0; p != NULL && k < nops; k++) {
        p->nops = (int)k + 1;
        if (op_of(PySequence_Fast_GET_ITEM(sequence, k), &p->ops[k], k, (int)nreads) < 0 ||
            slots_written(&p->ops[k], k, written) < 0) {
            program_free(p);
            p = NULL;
        }
    }
    Py_XDECREF(sequence);
    Py_XDECREF(ops);
    free(memory);
    return p;
}

/* ---- A WASI context ---- */

/* Column `column` of a tuple of `width`-tuples of bytes (width 0: a tuple of bytes) as a NULL-terminated array of copies,
 * its length in *n; NULL with an exception set (the copies made so far freed up to the array's NULL). */
static char **column_of(PyObject *spec, const char *name, int width, int column, int *n) {
    PyObject *items = PyObject_GetAttrString(spec, name);
    char **out = NULL;
    if (items != NULL && !PyTuple_Check(items))
        PyErr_Format(PyExc_TypeError, "WasiSpec.%s is %s; allowed: a tuple", name, Py_TYPE(items)->tp_name);
    else if (items != NULL && (out = calloc((size_t)PyTuple_GET_SIZE(items) + 1, sizeof(char *))) == NULL)
        PyErr_NoMemory();
    *n = out ? (int)PyTuple_GET_SIZE(items) : 0;
    for (int i = 0; out != NULL && i < *n; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        if (width && (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != width)) {
            PyErr_Format(PyExc_ValueError, "WasiSpec.%s[%d] must pair up: a tuple of %d bytes", name, i, width);
        } else {
            out[i] = copy_of(width ? PyTuple_GET_ITEM(item, column) : item, NULL, name);
        }
        if (out[i] == NULL) {
            free_strings(out);  /* the copies so far: the rest of the array is still NULL */
            out = NULL;
        }
    }
    Py_XDECREF(items);
    return out;
}

/* The spec's lists: 0, or -1 with an exception set (what was built is left for wasi_free). */
static int wasi_lists_of(PyObject *obj, WasiSpec *spec) {
    int n;
    if ((spec->argv = column_of(obj, "argv", 0, 0, &spec->argc)) == NULL ||
        (spec->env_names = column_of(obj, "env", 2, 0, &spec->envc)) == NULL ||
        (spec->env_values = column_of(obj, "env", 2, 1, &n)) == NULL ||
        (spec->hosts = column_of(obj, "preopens", 2, 0, &spec->npreopens)) == NULL ||
        (spec->guests = column_of(obj, "preopens", 2, 1, &n)) == NULL ||
        (spec->wfolders = column_of(obj, "writable", 3, 0, &spec->nwritable)) == NULL ||
        (spec->wsources = column_of(obj, "writable", 3, 1, &n)) == NULL ||
        (spec->wguests = column_of(obj, "writable", 3, 2, &n)) == NULL)
        return -1;
    return 0;
}

/* See glue.h. */
WasiSpec *wasi_of(PyObject *obj, int expected_exit) {
    if (versioned(obj, "WasiSpec") < 0)
        return NULL;
    WasiSpec *spec = calloc(1, sizeof(WasiSpec));
    if (spec == NULL)
        return (WasiSpec *)PyErr_NoMemory();
    PyObject *stdin_path = PyObject_GetAttrString(obj, "stdin");
    long long compare = 0;
    if (stdin_path == NULL || wasi_lists_of(obj, spec) < 0 || (spec->stdout_path = bytes_attr(obj, "stdout", NULL)) == NULL ||
        (spec->stderr_path = bytes_attr(obj, "stderr", NULL)) == NULL ||
        (stdin_path != Py_None && (spec->stdin_path = copy_of(stdin_path, NULL, "stdin")) == NULL) ||
        int_attr(obj, "compare_output", &compare) < 0) {
        Py_XDECREF(stdin_path);
        wasi_free(spec);
        return NULL;
    }
    Py_DECREF(stdin_path);
    spec->expected_exit = expected_exit;
    spec->compare_output = compare != 0;
    return spec;
}

/* ---- The plan ---- */

/* The plan's call (entry, arguments and their kinds, result kind) into `w`: 0, or -1 with an exception set. */
static int call_into(PyObject *plan, Workload *w) {
    char kinds[MAX_SLOTS + 1], result_kind[2];
    if ((w->entry = bytes_attr(plan, "entry", &w->entry_len)) == NULL || str_attr(plan, "arg_kinds", kinds, sizeof kinds) < 0 ||
        str_attr(plan, "result_kind", result_kind, sizeof result_kind) < 0)
        return -1;
    PyObject *args = PyObject_GetAttrString(plan, "args");
    if (args == NULL)
        return -1;
    Py_ssize_t nargs = PyTuple_Check(args) ? PyTuple_GET_SIZE(args) : -1;
    int status = 0;
    if (nargs < 0 || nargs >= MAX_SLOTS || (Py_ssize_t)strlen(kinds) != nargs) {
        PyErr_Format(PyExc_ValueError, "%zd arguments of kinds %s; allowed: a tuple of fewer than %d, one kind each", nargs, kinds,
                     MAX_SLOTS);
        status = -1;
    }
    for (Py_ssize_t i = 0; status == 0 && i < nargs; i++) {
        w->args[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(args, i));
        if (w->args[i] == -1 && PyErr_Occurred()) {
            status = -1;
        } else if (kinds[i] != 'i' && kinds[i] != 'I') {
            PyErr_Format(PyExc_ValueError, "argument kind %c; allowed: i (i32), I (i64)", kinds[i]);
            status = -1;
        }
        w->arg_kinds[i] = kind_of(kinds[i]);
    }
    Py_DECREF(args);
    w->nargs = status == 0 ? (int)nargs : 0;
    w->nslots = (size_t)(nargs > 1 ? nargs : 1);
    w->result_kind = kind_of(result_kind[0]);
    return status;
}

/* The plan's ResultCheck into `w`, its exit status into *exit_status: 0, or -1 with an exception set. */
static int check_into(PyObject *plan, Workload *w, long long *exit_status) {
    PyObject *check = PyObject_GetAttrString(plan, "check");
    long long mode = 0, expected = 0;
    int status = check == NULL || versioned(check, "ResultCheck") < 0 || int_attr(check, "mode", &mode) < 0 ||
                 int_attr(check, "expected", &expected) < 0 || int_attr(check, "exit_status", exit_status) < 0 ? -1 : 0;
    Py_XDECREF(check);
    if (status == 0 && (mode < CHECK_NONE || mode > CHECK_FIRST)) {
        PyErr_Format(PyExc_ValueError, "ResultCheck.mode %lld; allowed: %d none, %d expected, %d first", mode, CHECK_NONE,
                     CHECK_EXPECTED, CHECK_FIRST);
        status = -1;
    }
    w->check = (int)mode;
    w->expected = expected;
    return status;
}

/* The plan's module (bytes and SHA-256) into `w`: 0, or -1 with an exception set. */
static int module_into(PyObject *plan, Workload *w) {
    size_t sha_len = 0;
    char *sha = bytes_attr(plan, "sha256", &sha_len);
    if (sha != NULL && sha_len != 32)
        PyErr_Format(PyExc_ValueError, "sha256 is %zu bytes; allowed: 32", sha_len);
    else if (sha != NULL)
        memcpy(w->sha256, sha, 32);
    free(sha);
    if (PyErr_Occurred() || (w->wasm = (uint8_t *)bytes_attr(plan, "wasm", &w->wasm_len)) == NULL)
        return -1;
    return 0;
}

/* The plan's program, WASI context and linking into `w`: 0, or -1 with an exception set. */
static int extras_into(DriverObject *self, PyObject *plan, Workload *w, long long exit_status) {
    PyObject *program = PyObject_GetAttrString(plan, "program"), *wasi = PyObject_GetAttrString(plan, "wasi");
    long long linked = 0;
    if (program != NULL && wasi != NULL && int_attr(plan, "linked", &linked) == 0) {
        if (program != Py_None)
            w->program = program_of(program);
        if (PyErr_Occurred())
            ; /* the program's error stands */
        else if (wasi != Py_None && !self->library->api.wasi_resolved)
            PyErr_SetString(PyExc_RuntimeError, "call Library.enable_wasi() first");
        else if ((wasi != Py_None || linked) && self->core.linker == NULL)
            PyErr_SetString(PyExc_ValueError, "a WASI or linked workload needs the driver to be made with a linker");
        else if (!PyErr_Occurred() && wasi != Py_None)
            w->wasi = wasi_of(wasi, (int)exit_status);
        w->linked = wasi != Py_None || linked;
    }
    Py_XDECREF(program);
    Py_XDECREF(wasi);
    return PyErr_Occurred() ? -1 : 0;
}

/* add(plan) -> index: the RequestPlan read into a new workload (nothing kept if any part is refused). */
PyObject *Driver_add(DriverObject *self, PyObject *plan) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the driver is serving a block");
        return NULL;
    }
    Workload w;
    memset(&w, 0, sizeof w);
    long long exit_status = 0;
    if (versioned(plan, "RequestPlan") < 0 || module_into(plan, &w) < 0 || call_into(plan, &w) < 0 ||
        check_into(plan, &w, &exit_status) < 0 || extras_into(self, plan, &w, exit_status) < 0) {
        workload_free(&w);
        return NULL;
    }
    return added(self, &w);
}

/* The driver takes ``w`` (its index, as a Python int), or ``w`` is freed and the error set: one ending for every kind of
 * workload the glue reads. */
PyObject *added(DriverObject *self, Workload *w) {
    int index = driver_add(&self->core, w);
    if (index < 0) {
        workload_free(w);
        return PyErr_NoMemory();
    }
    return PyLong_FromLong(index);
}
