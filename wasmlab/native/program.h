/* A request recipe's steps (wasmlab.workloads.recipe), flattened by wasmlab.host.callpaths.native into operations on
 * integer values: calls with named results, writes and reads of guest memory, u32 loads and stores. */
#ifndef WASMLAB_PROGRAM_H
#define WASMLAB_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "outcomes.h"
#include "driver.h"

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

struct Program {
    Op *ops;
    int nops;              /* the ops filled so far (program_free frees those) */
    char *memory;          /* the exported memory the steps use */
    size_t memory_len;
    int nreads;
    uint8_t **first;       /* the first request's reads: every later request's must equal them byte for byte */
    size_t *first_len;
    int learned;
};

/* Room for `capacity` ops (none filled yet), the memory's name copied: the program, or NULL out of memory. */
Program *program_new(int capacity, const char *memory, size_t memory_len, int nreads);

/* The program and what its ops hold; NULL is fine. */
void program_free(Program *p);

/* One request's steps on `instance`: OUT_OK with the last call's result in *detail, or the outcome that ended it (after a
 * trap, the memory's size in *memory_bytes).  A read that differs from the first request's is OUT_MISMATCH; with
 * `differed` (a request on a reused instance) it sets *differed instead and the steps go on. */
int program_run(Driver *d, Program *p, wasmtime_context_t *context, wasmtime_instance_t *instance, int64_t *detail,
                int64_t *memory_bytes, int *differed);

#endif
