/* The compiled-module cache: `capacity` entries chained from a power-of-two number of buckets, keyed by the module's
 * SHA-256, the least recently used entry evicted when full (the lab's default policy, lru).  cache_find is inline: every
 * cached request looks its module up. */
#ifndef WASMLAB_MODULE_CACHE_H
#define WASMLAB_MODULE_CACHE_H

#include <stdint.h>
#include <string.h>

#include "wasmtime_api.h"

typedef struct {
    uint8_t sha256[32];
    wasmtime_module_t *module;
    wasmtime_instance_pre_t *pre;
    uint64_t last_used;
    int next; /* the next entry in its bucket's chain, -1 at its end */
    int used;
} Entry;

typedef struct {
    int capacity; /* 0: no cache */
    int nbuckets;
    int *buckets;
    Entry *entries;
    int count;
    uint64_t tick;
    uint64_t hits, misses, evictions; /* since the driver's counters were last taken */
} ModuleCache;

/* An empty cache of `capacity` entries (0: none): 0, or -1 out of memory. */
int cache_init(ModuleCache *cache, int capacity);

/* Every entry's module and InstancePre deleted, the cache emptied to capacity 0. */
void cache_clear(ModuleCache *cache, const Api *api);

/* Keep a compiled module (and its InstancePre, or NULL); the least recently used one makes room when the cache is full. */
void cache_insert(ModuleCache *cache, const Api *api, const uint8_t *sha, wasmtime_module_t *module, wasmtime_instance_pre_t *pre);

/* A module and its InstancePre deleted (either NULL is fine). */
void release_module(const Api *api, wasmtime_module_t *module, wasmtime_instance_pre_t *pre);

static inline uint64_t bucket_of(const ModuleCache *cache, const uint8_t *sha) {
    uint64_t h;
    memcpy(&h, sha, sizeof h); /* a SHA-256 is already uniformly spread */
    return h & (uint64_t)(cache->nbuckets - 1);
}

static inline Entry *cache_find(ModuleCache *cache, const uint8_t *sha) {
    for (int i = cache->buckets[bucket_of(cache, sha)]; i >= 0; i = cache->entries[i].next)
        if (memcmp(cache->entries[i].sha256, sha, 32) == 0)
            return &cache->entries[i];
    return NULL;
}

#endif
