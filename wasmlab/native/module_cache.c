/* The compiled-module cache: see module_cache.h. */
#include "module_cache.h"

#include <stdlib.h>

int cache_init(ModuleCache *cache, int capacity) {
    memset(cache, 0, sizeof *cache);
    if (capacity <= 0)
        return 0;
    int buckets = 1;
    while (buckets < 2 * capacity) buckets <<= 1;
    cache->buckets = malloc(sizeof(int) * (size_t)buckets);
    cache->entries = calloc((size_t)capacity, sizeof(Entry));
    if (cache->buckets == NULL || cache->entries == NULL) {
        free(cache->buckets);
        free(cache->entries);
        cache->buckets = NULL;
        cache->entries = NULL;
        return -1;
    }
    for (int i = 0; i < buckets; i++) cache->buckets[i] = -1;
    cache->nbuckets = buckets;
    cache->capacity = capacity;
    return 0;
}

void release_module(const Api *api, wasmtime_module_t *module, wasmtime_instance_pre_t *pre) {
    if (pre != NULL)
        api->wasmtime_instance_pre_delete(pre);
    if (module != NULL)
        api->wasmtime_module_delete(module);
}

void cache_clear(ModuleCache *cache, const Api *api) {
    if (cache->entries != NULL && api != NULL) {
        for (int i = 0; i < cache->capacity; i++)
            if (cache->entries[i].used)
                release_module(api, cache->entries[i].module, cache->entries[i].pre);
    }
    free(cache->entries);
    free(cache->buckets);
    cache->entries = NULL;
    cache->buckets = NULL;
    cache->capacity = 0;
    cache->count = 0;
}

static void cache_unlink(ModuleCache *cache, int index) {
    int *link = &cache->buckets[bucket_of(cache, cache->entries[index].sha256)];
    while (*link != index)
        link = &cache->entries[*link].next;
    *link = cache->entries[index].next;
}

void cache_insert(ModuleCache *cache, const Api *api, const uint8_t *sha, wasmtime_module_t *module, wasmtime_instance_pre_t *pre) {
    int slot = -1;
    if (cache->count < cache->capacity) {
        for (int i = 0; i < cache->capacity; i++)
            if (!cache->entries[i].used) { slot = i; break; }
        cache->count++;
    } else {
        uint64_t oldest = UINT64_MAX;
        for (int i = 0; i < cache->capacity; i++)
            if (cache->entries[i].last_used < oldest) { oldest = cache->entries[i].last_used; slot = i; }
        cache_unlink(cache, slot);
        release_module(api, cache->entries[slot].module, cache->entries[slot].pre);
        cache->evictions++;
    }
    Entry *e = &cache->entries[slot];
    memcpy(e->sha256, sha, 32);
    e->module = module;
    e->pre = pre;
    e->used = 1;
    e->last_used = ++cache->tick;
    uint64_t b = bucket_of(cache, sha);
    e->next = cache->buckets[b];
    cache->buckets[b] = slot;
}
