/* A WASI request's files: see directories.h. */
#define _GNU_SOURCE /* nftw */
#include "directories.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint8_t *read_file(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *data = NULL;
    size_t cap = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *grown = realloc(data, cap);
            if (grown == NULL) { free(data); fclose(f); *len = 0; return NULL; }
            data = grown;
        }
        size_t got = fread(data + *len, 1, cap - *len, f);
        if (got == 0) break;
        *len += got;
    }
    fclose(f);
    return data;
}

/* The file tree a writable directory starts each request with.  Every helper returns 0, or -1 with errno set. */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

/* `path` and everything under it gone (nothing there is fine). */
static int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A copy of the regular file `from` at `to`, with its permission bits. */
static int copy_file(const char *from, const char *to, mode_t mode) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
    if (out < 0) {
        int e = errno;
        close(in);
        errno = e;
        return -1;
    }
    char chunk[65536];
    ssize_t got;
    int status = 0;
    while (status == 0 && (got = read(in, chunk, sizeof chunk)) != 0) {
        if (got < 0) {
            if (errno != EINTR) status = -1;
            continue;
        }
        for (ssize_t done = 0; status == 0 && done < got;) {
            ssize_t put = write(out, chunk + done, (size_t)(got - done));
            if (put >= 0) done += put;
            else if (errno != EINTR) status = -1;
        }
    }
    int e = errno;
    close(in);
    if (close(out) != 0 && status == 0) { status = -1; e = errno; }
    errno = e;
    return status;
}

/* `to` made as a copy of the directory `from`: its files, subdirectories and symbolic links (anything else refused). */
static int copy_tree(const char *from, const char *to) {
    struct stat st;
    if (stat(from, &st) != 0 || mkdir(to, st.st_mode & 07777) != 0)
        return -1;
    DIR *dir = opendir(from);
    if (dir == NULL)
        return -1;
    int status = 0;
    struct dirent *entry;
    char source[PATH_MAX], target[PATH_MAX];
    while (status == 0 && (entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (snprintf(source, sizeof source, "%s/%s", from, entry->d_name) >= (int)sizeof source ||
            snprintf(target, sizeof target, "%s/%s", to, entry->d_name) >= (int)sizeof target) {
            errno = ENAMETOOLONG;
            status = -1;
        } else if (lstat(source, &st) != 0) {
            status = -1;
        } else if (S_ISDIR(st.st_mode)) {
            status = copy_tree(source, target);
        } else if (S_ISREG(st.st_mode)) {
            status = copy_file(source, target, st.st_mode);
        } else if (S_ISLNK(st.st_mode)) {
            char link[PATH_MAX];
            ssize_t n = readlink(source, link, sizeof link - 1);
            if (n < 0) {
                status = -1;
            } else {
                link[n] = 0;
                status = symlink(link, target);
            }
        } else {
            errno = ENOTSUP;
            status = -1;
        }
    }
    int e = errno;
    closedir(dir);
    errno = e;
    return status;
}

int fresh_dir(const char *folder, const char *source) {
    if (remove_tree(folder) != 0)
        return -1;
    return source[0] ? copy_tree(source, folder) : mkdir(folder, 0700);
}

static void buffer_add(Buffer *b, const void *data, size_t n) {
    if (b->failed || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (grown == NULL) { b->failed = 1; return; }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);  /* not alphasort: strcoll would make the order depend on the locale */
}

/* Everything under `host` appended to `b` as records in name order, depth first, each: a type byte ('d' directory,
 * 'f' file, 'l' symbolic link), the guest path ending in NUL, a uint64 length (native order) and that many bytes (the
 * file's contents or the link's target; none for a directory).  Python reads the same records (native.parse_files). */
int snapshot_dir(Buffer *b, const char *host, const char *guest) {
    struct dirent **names;
    int n = scandir(host, &names, NULL, by_name);
    if (n < 0)
        return -1;
    int status = 0;
    char path[PATH_MAX], inside[PATH_MAX];
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        struct stat st;
        if (status != 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", host, name) >= (int)sizeof path ||
            snprintf(inside, sizeof inside, "%s/%s", strcmp(guest, "/") == 0 ? "" : guest, name) >= (int)sizeof inside) {
            errno = ENAMETOOLONG;
            status = -1;
            continue;
        }
        if (lstat(path, &st) != 0) { status = -1; continue; }
        char type = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'f';
        uint8_t *contents = NULL;
        size_t len = 0;
        char link[PATH_MAX];
        if (type == 'f') {
            contents = read_file(path, &len);
            if (contents == NULL && st.st_size > 0) { status = -1; continue; }
        } else if (type == 'l') {
            ssize_t got = readlink(path, link, sizeof link);
            if (got < 0) { status = -1; continue; }
            contents = (uint8_t *)link;
            len = (size_t)got;
        }
        uint64_t size = len;
        buffer_add(b, &type, 1);
        buffer_add(b, inside, strlen(inside) + 1);
        buffer_add(b, &size, sizeof size);
        buffer_add(b, contents, len);
        if (type == 'f') free(contents);
        if (type == 'd') status = snapshot_dir(b, path, inside);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return b->failed ? (errno = ENOMEM, -1) : status;
}

/* One record of a listing at `*at` (advanced past it): 1, or 0 at the end. */
static int next_record(const uint8_t *data, size_t len, size_t *at, char *type, const char **path, uint64_t *size, const uint8_t **contents) {
    if (*at >= len)
        return 0;
    *type = (char)data[*at];
    *path = (const char *)data + *at + 1;
    size_t after = *at + 1 + strlen(*path) + 1;
    memcpy(size, data + after, sizeof *size);
    *contents = data + after + sizeof *size;
    *at = after + sizeof *size + *size;
    return 1;
}

/* Where this request's listing `now` first differs from the first request's `first`, in words. */
void describe_difference(const uint8_t *now, size_t now_len, const uint8_t *first, size_t first_len, char *out, size_t size) {
    size_t a = 0, b = 0;
    for (;;) {
        char ta, tb;
        const char *pa, *pb;
        uint64_t la, lb;
        const uint8_t *ca, *cb;
        int more_a = next_record(now, now_len, &a, &ta, &pa, &la, &ca), more_b = next_record(first, first_len, &b, &tb, &pb, &lb, &cb);
        if (!more_a && !more_b) {
            snprintf(out, size, "the written files differ from the first request's");
        } else if (!more_b) {
            snprintf(out, size, "the request wrote %s, which the first request did not", pa);
        } else if (!more_a) {
            snprintf(out, size, "the request did not write %s, which the first request did", pb);
        } else if (strcmp(pa, pb) != 0) {
            snprintf(out, size, "the written files differ from the first request's: %s where the first request has %s", pa, pb);
        } else if (ta != tb || la != lb || memcmp(ca, cb, la) != 0) {
            snprintf(out, size, "the written %s (%llu bytes) differs from the first request's (%llu bytes)", pa,
                     (unsigned long long)la, (unsigned long long)lb);
        } else {
            continue;
        }
        return;
    }
}
