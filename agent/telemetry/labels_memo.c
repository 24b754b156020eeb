/* The labels memo (see labels_memo.h). */
#include "telemetry/labels_memo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"

/* Every field of a record that tcp_labels_from_record and
 * tcp_labels_from_config read: a field they start reading must be added
 * here (tests/unit/test_labels_memo.c compares memoized and computed
 * labels over records that differ in each). */
struct memo_key {
    char version[20];
    char direction[sizeof(((struct conn_record *)0)->direction)];
    char pod[RECORD_POD_LEN];
    char peer_identity[sizeof(((struct conn_record *)0)->peer_identity)];
    char dst_service[sizeof(((struct conn_record *)0)->dst_service)];
    struct meshd_addr src, upstream;
    bool mtls;  /* hbone.family set */
    bool local; /* the same-node fast path */
    enum resp_flag flag;
};

struct memo_slot {
    bool used;
    uint64_t id; /* of this set: next_id when kept */
    struct memo_key key;
    struct tcp_labels labels;
};

struct labels_memo {
    struct memo_slot slot[LABELS_MEMO_SLOTS];
    uint64_t hits, misses;
};

/* Ids of kept sets, across memos: the loop thread's. */
static uint64_t next_id = 1;

int labels_memo_new(struct labels_memo **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void labels_memo_free(struct labels_memo *m)
{
    free(m);
}

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
    /* Eight bytes a step, then the tail: asked once per request. */
    const unsigned char *c = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, c + i, 8);
        h = (uint32_t)(((h ^ w) * 0x100000001b3ull) >> 16);
    }
    for (; i < n; i++)
        h = (h ^ c[i]) * 16777619u;
    return h;
}

/* The labels read the source's and the endpoint's IPs, never their ports
 * (telemetry/workload_labels.c looks the peer up by IP): keyed without the
 * port, the requests of all of a pod's connections to one Service share a
 * slot instead of taking one each (their source ports differ). */
static struct meshd_addr ip_of(const struct meshd_addr *a)
{
    struct meshd_addr ip = *a;
    ip.port = 0;
    return ip;
}

static bool ip_equal(const struct meshd_addr *key, const struct meshd_addr *a)
{
    struct meshd_addr ip = ip_of(a);
    return addr_equal(key, &ip);
}

static uint32_t addr_hash(uint32_t h, const struct meshd_addr *a)
{
    h = fnv(h, &a->family, sizeof(a->family));
    return fnv(h, a->addr, sizeof(a->addr));
}

static struct memo_slot *slot_of(struct labels_memo *m, const struct conn_record *rec)
{
    uint32_t h = fnv(2166136261u, rec->pod, strlen(rec->pod));
    h = fnv(h, rec->dst_service, strlen(rec->dst_service));
    h = addr_hash(h, &rec->upstream);
    h = addr_hash(h, &rec->src);
    return &m->slot[h % LABELS_MEMO_SLOTS];
}

static bool key_is(const struct memo_key *k, const char *version, const struct conn_record *rec)
{
    return k->mtls == (rec->hbone.family != 0) && k->local == rec->local &&
           k->flag == rec->response_flag && ip_equal(&k->upstream, &rec->upstream) &&
           ip_equal(&k->src, &rec->src) && strcmp(k->pod, rec->pod) == 0 &&
           strcmp(k->dst_service, rec->dst_service) == 0 &&
           strcmp(k->peer_identity, rec->peer_identity) == 0 &&
           strcmp(k->direction, rec->direction) == 0 && strcmp(k->version, version) == 0;
}

/* Copies a string field whole, or reports that it does not fit (the
 * record's fields are NUL-terminated within their arrays: always fits). */
#define KEEP(dst, src)                                                                             \
    (strlen(src) < sizeof(dst) ? (memcpy(dst, src, strlen(src) + 1), true) : false)

bool labels_memo_get_id(struct labels_memo *m, const char *version, const struct conn_record *rec,
                        struct tcp_labels *out, uint64_t *id)
{
    const struct memo_slot *s = slot_of(m, rec);
    if (!s->used || !key_is(&s->key, version, rec)) {
        m->misses++;
        return false;
    }
    m->hits++;
    *out = s->labels;
    *id = s->id;
    return true;
}

bool labels_memo_get(struct labels_memo *m, const char *version, const struct conn_record *rec,
                     struct tcp_labels *out)
{
    uint64_t id;
    return labels_memo_get_id(m, version, rec, out, &id);
}

void labels_memo_put(struct labels_memo *m, const char *version, const struct conn_record *rec,
                     const struct tcp_labels *l)
{
    struct memo_slot *s = slot_of(m, rec);
    s->used = false;
    struct memo_key *k = &s->key;
    if (!KEEP(k->version, version) || !KEEP(k->direction, rec->direction) ||
        !KEEP(k->pod, rec->pod) || !KEEP(k->peer_identity, rec->peer_identity) ||
        !KEEP(k->dst_service, rec->dst_service))
        return; /* not kept: computed again next time */
    k->src = ip_of(&rec->src);
    k->upstream = ip_of(&rec->upstream);
    k->mtls = rec->hbone.family != 0;
    k->local = rec->local;
    k->flag = rec->response_flag;
    s->labels = *l;
    s->id = next_id++;
    s->used = true;
}

void labels_memo_counts(const struct labels_memo *m, uint64_t *hits, uint64_t *misses)
{
    *hits = m->hits;
    *misses = m->misses;
}
