/* A recipe's program, run against one instance per request: see program.h. */
#include "program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "failures.h"

Program *program_new(int capacity, const char *memory, size_t memory_len, int nreads) {
    Program *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->ops = calloc((size_t)(capacity ? capacity : 1), sizeof(Op));
    p->memory = malloc(memory_len + 1);
    p->first = calloc((size_t)(nreads ? nreads : 1), sizeof(uint8_t *));
    p->first_len = calloc((size_t)(nreads ? nreads : 1), sizeof(size_t));
    p->nreads = nreads;
    if (p->ops == NULL || p->memory == NULL || p->first == NULL || p->first_len == NULL) {
        program_free(p);
        return NULL;
    }
    memcpy(p->memory, memory, memory_len);
    p->memory[memory_len] = '\0';
    p->memory_len = memory_len;
    return p;
}

void program_free(Program *p) {
    if (p == NULL)
        return;
    for (int k = 0; k < p->nops; k++) {
        free(p->ops[k].name);
        free(p->ops[k].data);
    }
    for (int r = 0; r < p->nreads && p->first != NULL; r++)
        free(p->first[r]);
    free(p->first);
    free(p->first_len);
    free(p->ops);
    free(p->memory);
    free(p);
}

/* One request's run of a program: its value slots, the memory its steps use, and the step running (as the recipe
 * numbers it: steps[0] first). */
typedef struct {
    Driver *d;
    const Api *api;
    Program *p;
    wasmtime_context_t *context;
    wasmtime_extern_t memory;
    int has_memory;
    int current;
    int *differed;         /* a reused instance's request: a read that differs is counted here, not a mismatch */
    int64_t values[MAX_VALUES];
} Run;

/* An operand's value as a call's argument: the sum wraps in 64 bits (as the Python paths truncate an argument), never
 * signed overflow. */
static inline int64_t value_of(const Run *run, Operand o) {
    return o.slot < 0 ? o.offset : (int64_t)((uint64_t)run->values[o.slot] + (uint64_t)o.offset);
}

/* An operand's value as an address or a length: 1 with it in *out, or 0 when the sum leaves 64 bits (the Python paths
 * compute it exactly and find it past the memory's end). */
static inline int exact_value_of(const Run *run, Operand o, int64_t *out) {
    if (o.slot < 0) {
        *out = o.offset;
        return 1;
    }
    return !__builtin_add_overflow(run->values[o.slot], o.offset, out);
}

/* The memory's bytes at `at` if the `length` bytes there lie inside it; NULL (the problem remembered) if not. */
static uint8_t *bounded(Run *run, Operand at, Operand length, const char *what) {
    size_t size = run->has_memory ? run->api->wasmtime_memory_data_size(run->context, &run->memory.of.memory) : 0;
    int64_t addr = 0, n = 0;
    int exact = exact_value_of(run, at, &addr) && exact_value_of(run, length, &n);
    if (!run->has_memory || !exact || addr < 0 || n < 0 || (uint64_t)addr + (uint64_t)n > size) {
        char message[192];
        if (exact)
            snprintf(message, sizeof message, "recipe steps[%d] (%s): %lld bytes at %lld run past the memory's end (%zu bytes)",
                     run->current, what, (long long)n, (long long)addr, size);
        else
            snprintf(message, sizeof message, "recipe steps[%d] (%s): an address or length past 64 bits, past the memory's "
                     "end (%zu bytes)", run->current, what, size);
        driver_remember_text(run->d, message);
        return NULL;
    }
    return run->api->wasmtime_memory_data(run->context, &run->memory.of.memory) + addr;
}

/* An OP_CALL: OUT_OK (its result in its slot and, for a step of its own, in *detail), or the outcome that ends the request. */
static int run_call(Run *run, const Op *op, wasmtime_instance_t *instance, int64_t *detail, int64_t *memory_bytes) {
    const Api *api = run->api;
    wasmtime_extern_t item;
    if (!api->wasmtime_instance_export_get(run->context, instance, op->name, op->name_len, &item) || item.kind != WASMTIME_EXTERN_FUNC)
        return OUT_NO_EXPORT;
    wasmtime_val_raw_t raw[MAX_SLOTS];
    for (int i = 0; i < op->nargs; i++) {
        int64_t v = value_of(run, op->args[i]);
        if (op->arg_kinds[i] == KIND_I64) raw[i].i64 = v;
        else { raw[i].i64 = 0; raw[i].i32 = (int32_t)v; }
    }
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *err = api->wasmtime_func_call_unchecked(run->context, &item.of.func, raw, op->nslots, &trap);
    if (err != NULL) {
        int status = 0;
        if (api->wasmtime_error_exit_status(err, &status)) {
            *detail = status;
            api->wasmtime_error_delete(err);
            return OUT_EXIT;
        }
        *detail = driver_drop_error(run->d, err, "WasmtimeError: ");
        return OUT_ERROR;
    }
    if (trap != NULL) {
        driver_drop_trap(run->d, trap, detail);
        if (run->has_memory)
            *memory_bytes = (int64_t)api->wasmtime_memory_data_size(run->context, &run->memory.of.memory);
        return OUT_TRAP;
    }
    int64_t result = op->result_kind == KIND_I64 ? raw[0].i64 : op->result_kind == KIND_I32 ? (int64_t)raw[0].i32 : 0;
    if (op->dst >= 0)
        run->values[op->dst] = result;
    if (op->top)
        *detail = result; /* 0 for a call that returns nothing: it is still the last call's, and nothing is checked */
    return OUT_OK;
}

/* An OP_READ: the first request's bytes kept, every later request's compared with them (a reused instance's difference
 * noted in run->differed). */
static int run_read(Run *run, const Op *op) {
    Program *p = run->p;
    const uint8_t *bytes = bounded(run, op->at, op->value, "read");
    if (bytes == NULL)
        return OUT_ERROR;
    int64_t n = value_of(run, op->value); /* bounded: inside the memory */
    if (!p->learned) {
        free(p->first[op->read]);
        p->first[op->read] = malloc((size_t)n ? (size_t)n : 1);
        if (p->first[op->read] == NULL)
            return OUT_ERROR;
        memcpy(p->first[op->read], bytes, (size_t)n);
        p->first_len[op->read] = (size_t)n;
    } else if (p->first_len[op->read] != (size_t)n || memcmp(p->first[op->read], bytes, (size_t)n) != 0) {
        if (run->differed != NULL) {
            *run->differed = 1;
            return OUT_OK;
        }
        char message[160];
        snprintf(message, sizeof message, "recipe steps[%d]: the %lld bytes read differ from the first request's", run->current,
                 (long long)n);
        driver_remember_text(run->d, message);
        return OUT_MISMATCH;
    }
    return OUT_OK;
}

/* An OP_WRITE, OP_LOAD or OP_STORE32: OUT_OK, or OUT_ERROR past the memory's end. */
static int run_memory_op(Run *run, const Op *op) {
    Operand length = {-1, op->op == OP_WRITE ? (int64_t)op->len : 4};
    uint8_t *bytes = bounded(run, op->at, length, op->op == OP_WRITE ? "write" : op->op == OP_LOAD ? "load" : "store");
    if (bytes == NULL)
        return OUT_ERROR;
    if (op->op == OP_WRITE) {
        memcpy(bytes, op->data, op->len);
    } else if (op->op == OP_LOAD) {
        uint32_t v;
        memcpy(&v, bytes, 4);
        run->values[op->dst] = v;
    } else {
        uint32_t v = (uint32_t)value_of(run, op->value);
        memcpy(bytes, &v, 4);
    }
    return OUT_OK;
}

int program_run(Driver *d, Program *p, wasmtime_context_t *context, wasmtime_instance_t *instance, int64_t *detail,
                int64_t *memory_bytes, int *differed) {
    Run run;
    run.d = d;
    run.differed = differed;
    run.api = d->api;
    run.p = p;
    run.context = context;
    run.current = 0;
    run.has_memory = d->api->wasmtime_instance_export_get(context, instance, p->memory, p->memory_len, &run.memory)
                     && run.memory.kind == WASMTIME_EXTERN_MEMORY;
    int64_t *steps = d->steps;
    int step = 1; /* the next stamp */
    if (steps) steps[0] = now_ns();
    for (int k = 0; k < p->nops; k++) {
        const Op *op = &p->ops[k];
        int outcome = OUT_OK;
        if (op->op == OP_STAMP) {
            run.current++;
            if (steps && step < STEP_STAMPS) steps[step++] = now_ns();
        } else if (op->op == OP_CALL) {
            outcome = run_call(&run, op, instance, detail, memory_bytes);
        } else if (op->op == OP_READ) {
            outcome = run_read(&run, op);
        } else {
            outcome = run_memory_op(&run, op);
        }
        if (outcome == OUT_ERROR && op->op != OP_CALL)
            *detail = ERROR_OTHER; /* a memory step that could not run (a call's error has its kind already): not the
                                    * last result, which Python would read as a pool's or a memory limit's error */
        if (outcome != OUT_OK)
            return outcome;
    }
    p->learned = 1;
    return OUT_OK;
}
