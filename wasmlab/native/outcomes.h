/* What the driver and Python agree on: a request's outcome, how its result is checked, the value kinds, the error kinds
 * and the sizes of the buffers a block writes (module.c exports each to Python). */
#ifndef WASMLAB_OUTCOMES_H
#define WASMLAB_OUTCOMES_H

enum { OUT_OK = 0, OUT_TRAP = 1, OUT_EXIT = 2, OUT_ERROR = 3, OUT_MISMATCH = 4, OUT_NO_EXPORT = 5, OUT_COMPILE_ERROR = 6 };
enum { CHECK_NONE = 0, CHECK_EXPECTED = 1, CHECK_FIRST = 2 };
enum { KIND_NONE = 0, KIND_I32 = 1, KIND_I64 = 2 };
enum { ERROR_OTHER = 0, ERROR_POOL_EXHAUSTED = 1, ERROR_MEMORY_LIMIT = 2 };

#define MAX_SLOTS 16
/* per request: ns, outcome, detail (result, trap code or exit status), memory bytes, start lag, whether it ran on a fresh
 * instance (1) or one an earlier request used (0: instance reuse), and whether its result differed from the fresh
 * instance's (a reused request's carried-over state) */
#define RECORD_WORDS 7
#define STAMPS 8          /* start, then the end of each of the lab's seven phases */
#define STEP_STAMPS 65    /* a recipe's steps in phased mode: start, then after each of its first 64 steps */
#define MESSAGE_BYTES 512

#endif
