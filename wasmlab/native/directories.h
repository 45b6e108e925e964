/* A WASI request's files: its writable directories made fresh (empty, or a copy of a host directory), the listing of
 * what it wrote (snapshot_dir), and where two listings differ.  Every int function returns 0, or -1 with errno set. */
#ifndef WASMLAB_DIRECTORIES_H
#define WASMLAB_DIRECTORIES_H

#include <stddef.h>
#include <stdint.h>

/* A growing byte buffer (the listing of a request's written files). */
typedef struct {
    uint8_t *data;
    size_t len, cap;
    int failed;
} Buffer;

/* The whole of a file (stdout, stderr or a written file of the request that just ended); NULL and *len 0 when it is empty
 * or missing. */
uint8_t *read_file(const char *path, size_t *len);

/* A request's writable directory as it must start: empty (`source` "") or a copy of `source`, whatever the last request
 * left there gone first. */
int fresh_dir(const char *folder, const char *source);

/* Everything under `host` appended to `b` as records in name order, depth first, each: a type byte ('d' directory, 'f'
 * file, 'l' symbolic link), the guest path ending in NUL, a uint64 length (native order) and that many bytes (the file's
 * contents or the link's target; none for a directory).  Python reads the same records (native.parse_files). */
int snapshot_dir(Buffer *b, const char *host, const char *guest);

/* Where this request's listing `now` first differs from the first request's `first`, in words. */
void describe_difference(const uint8_t *now, size_t now_len, const uint8_t *first, size_t first_len, char *out, size_t size);

#endif
