/* A WASI guest's context, built for every request, and the check of what each request leaves behind. */
#ifndef WASMLAB_WASI_H
#define WASMLAB_WASI_H

#include <stddef.h>
#include <stdint.h>

#include "wasmtime_api.h"

/* What a WASI request leaves behind and later requests must repeat byte for byte: stdout, stderr, and the files it
 * wrote into its writable directories (one listing of them all, see snapshot_dir). */
enum { OUT_STDOUT, OUT_STDERR, OUT_FILES, OUTPUTS };

/* argv, environment, stdin from a file, stdout and stderr to files (read back after the store is gone and compared with
 * the first request's, which Python checks), read-only preopened directories, writable ones made fresh for every request
 * (empty, or a copy of a host directory), and the exit status that means success.  Every list is NULL-terminated. */
typedef struct WasiSpec {
    int argc;
    char **argv;
    int envc;
    char **env_names, **env_values;
    char *stdin_path, *stdout_path, *stderr_path;
    int npreopens;
    char **hosts, **guests;
    int nwritable;
    char **wfolders;      /* where this driver's requests get each writable directory (made anew every request) */
    char **wsources;      /* what each is a copy of; an empty string for an empty directory */
    char **wguests;       /* its path in the guest */
    int expected_exit;
    int compare_output;   /* each request's outputs must equal the first request's */
    int learned;
    size_t ended[2];      /* where stdout and stderr ended after the last check: a kept instance's next output starts there */
    uint8_t *first_out[OUTPUTS];
    size_t first_len[OUTPUTS];
} WasiSpec;

/* A NULL-terminated array of strings and the strings in it; NULL is fine.  Freed up to its NULL, not by a count: a spec
 * whose lists did not pair up is freed too, and a count would then run past a shorter list. */
void free_strings(char **list);

/* The spec and everything it holds; NULL is fine. */
void wasi_free(WasiSpec *spec);

/* This request's WASI context into the store (the context owns the config from then on), its writable directories made
 * fresh first: 0, or -1 with what went wrong in `problem`. */
int wasi_context_set(const Api *api, const WasiSpec *spec, wasmtime_context_t *context, char *problem, size_t size);

/* A WASI request's outputs (stdout, stderr, the listing of its writable directories) against the first request's, kept
 * when it is the first: OUT_OK, OUT_MISMATCH, or OUT_ERROR when the written files cannot be read back (what differed or
 * failed in `message`).  With `differed` (a request on a reused instance, instance reuse): its output is what stdout and
 * stderr gained since the last check, and a difference sets *differed and is OUT_OK. */
int wasi_compare_output(WasiSpec *spec, int *differed, char *message, size_t size);

#endif
