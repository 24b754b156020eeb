/* Outbound HBONE session pool (see pool.h). */
#include "hbone/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/upstream.h"

#define POOL_BUCKETS 1024

struct pool_entry {
    struct hbone_pool_key key;
    struct hbone_session *session;
    struct hbone_pool *pool;
    struct pool_entry *next; /* bucket chain */
};

struct hbone_pool {
    struct loop *loop; /* borrowed */
    struct hbone_pool_opts opts;
    struct pool_entry *bucket[POOL_BUCKETS];
    struct hbone_pool_stats stats;
};

static uint32_t key_hash(const struct hbone_pool_key *k)
{
    /* FNV-1a over the identities and the address. */
    uint32_t h = 2166136261u;
    const unsigned char *parts[3] = {(const unsigned char *)k->src_id,
                                     (const unsigned char *)k->dst_id,
                                     (const unsigned char *)&k->dst};
    size_t lens[3] = {strlen(k->src_id), strlen(k->dst_id), sizeof(k->dst)};
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < lens[p]; i++)
            h = (h ^ parts[p][i]) * 16777619u;
    return h % POOL_BUCKETS;
}

static bool key_equal(const struct hbone_pool_key *a, const struct hbone_pool_key *b)
{
    return strcmp(a->src_id, b->src_id) == 0 && strcmp(a->dst_id, b->dst_id) == 0 &&
           addr_equal(&a->dst, &b->dst);
}

int hbone_pool_new(struct loop *loop, const struct hbone_pool_opts *opts, struct hbone_pool **out)
{
    struct hbone_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    p->opts = *opts;
    if (!p->opts.max_streams || p->opts.max_streams > HBONE_MAX_STREAMS)
        p->opts.max_streams = HBONE_MAX_STREAMS;
    *out = p;
    return 0;
}

static void entry_unlink(struct pool_entry *e)
{
    struct hbone_pool *p = e->pool;
    for (struct pool_entry **pp = &p->bucket[key_hash(&e->key)]; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            p->stats.sessions--;
            return;
        }
    }
}

static int entry_on_established(void *ctx, struct hbone_session *s)
{
    struct pool_entry *e = ctx;
    struct hbone_pool *p = e->pool;
    char why[160] = "no verifier";
    int rc = p->opts.verify_server ? p->opts.verify_server(p->opts.verify_ctx, hbone_session_ssl(s),
                                                           e->key.dst_id, why, sizeof(why))
                                   : -EPERM;
    if (rc) {
        char dst[ADDR_STRLEN];
        p->stats.identity_mismatches++;
        log_ratelimited(LOG_WARN, "hbone: %s refused: expected %s: %s",
                        addr_format(&e->key.dst, dst, sizeof(dst)), e->key.dst_id, why);
    }
    return rc;
}

static void entry_on_stream_done(void *ctx, struct hbone_stream *st, void *stream_ctx, int err,
                                 const struct hbone_stream_stats *stats)
{
    struct pool_entry *e = ctx;
    e->pool->stats.streams--;
    if (e->pool->opts.on_stream_done)
        e->pool->opts.on_stream_done(e->pool->opts.stream_ctx, st, stream_ctx, err, stats);
}

static void entry_on_session_done(void *ctx, struct hbone_session *s)
{
    struct pool_entry *e = ctx;
    if (!hbone_session_established(s)) {
        char dst[ADDR_STRLEN];
        e->pool->stats.handshake_failures++;
        log_ratelimited(LOG_WARN, "hbone: session to %s failed: %s",
                        addr_format(&e->key.dst, dst, sizeof(dst)), hbone_session_error(s));
    }
    if (e->session)
        entry_unlink(e);
    free(e);
}

/* A new session from a marked socket in the source pod's netns. */
static int entry_open(struct hbone_pool *p, const struct hbone_pool_key *key, int netns_fd,
                      SSL_CTX *ctx, struct pool_entry **out)
{
    /* Sessions are long-lived and shared: keepalive finds a dead peer. */
    const struct upstream_tuning tuning = {.keepalive = true};
    int rc, fd = upstream_connect(netns_fd, &key->dst, NULL, &p->opts.owner, &tuning);
    if (fd < 0)
        return fd;
    struct pool_entry *e = calloc(1, sizeof(*e));
    if (!e) {
        close(fd);
        return -ENOMEM;
    }
    e->key = *key;
    e->pool = p;
    struct hbone_handler h = {.on_established = entry_on_established,
                              .on_stream_done = entry_on_stream_done,
                              .on_session_done = entry_on_session_done,
                              .ctx = e};
    rc = hbone_session_new(p->loop, ctx, fd, false, &h, &e->session);
    if (rc) {
        free(e);
        return rc;
    }
    uint32_t b = key_hash(key);
    e->next = p->bucket[b];
    p->bucket[b] = e;
    p->stats.sessions++;
    p->stats.sessions_opened++;
    *out = e;
    return 0;
}

/* A usable session for `key` with room for a stream, or a new one. */
static int pool_session_for(struct hbone_pool *p, const struct hbone_pool_key *key, int netns_fd,
                            SSL_CTX *client_ctx, struct pool_entry **out)
{
    struct pool_entry *e = p->bucket[key_hash(key)];
    for (; e; e = e->next)
        if (key_equal(&e->key, key) && hbone_session_usable(e->session) &&
            hbone_session_streams(e->session) < p->opts.max_streams)
            break;
    if (e) {
        p->stats.sessions_reused++;
        *out = e;
        return 0;
    }
    return entry_open(p, key, netns_fd, client_ctx, out);
}

int hbone_pool_connect(struct hbone_pool *p, const struct hbone_pool_key *key, int netns_fd,
                       SSL_CTX *client_ctx, const char *authority,
                       const struct hbone_connect_headers *hdrs, int app_fd, void *stream_ctx)
{
    struct pool_entry *e;
    int rc = pool_session_for(p, key, netns_fd, client_ctx, &e);
    if (rc) {
        if (!p->opts.give_back)
            close(app_fd);
        return rc;
    }
    struct hbone_stream *st = NULL;
    rc = hbone_stream_open(e->session, authority, hdrs, app_fd, stream_ctx, &st);
    if (rc && !p->opts.give_back)
        close(app_fd);
    if (rc == 0 && st) {
        p->stats.streams++;
        if (p->opts.give_back)
            hbone_stream_give_back(st);
    }
    return rc;
}

int hbone_pool_connect_pipe(struct hbone_pool *p, const struct hbone_pool_key *key, int netns_fd,
                            SSL_CTX *client_ctx, const char *authority,
                            const struct hbone_connect_headers *hdrs, const struct hbone_pipe *pipe,
                            void *stream_ctx, struct hbone_stream **out)
{
    struct pool_entry *e;
    int rc = pool_session_for(p, key, netns_fd, client_ctx, &e);
    if (rc)
        return rc;
    rc = hbone_stream_open_pipe(e->session, authority, hdrs, pipe, stream_ctx, out);
    if (rc == 0 && !*out)
        return -EIO; /* refused by nghttp2: reported through on_stream_done */
    if (rc == 0)
        p->stats.streams++;
    return rc;
}

int hbone_pool_abort_pending(struct hbone_pool *p, const struct hbone_pool_key *key,
                             const void *stream_ctx, int err)
{
    for (struct pool_entry *e = p->bucket[key_hash(key)]; e; e = e->next) {
        if (!key_equal(&e->key, key))
            continue;
        int rc = hbone_session_abort_pending(e->session, stream_ctx, err);
        if (rc != -ENOENT)
            return rc;
    }
    return -ENOENT;
}

void hbone_pool_drain_src(struct hbone_pool *p, const char *src_id)
{
    for (int b = 0; b < POOL_BUCKETS; b++)
        for (struct pool_entry *e = p->bucket[b], *next; e; e = next) {
            next = e->next; /* draining an idle session may free it */
            if (strcmp(e->key.src_id, src_id) == 0)
                hbone_session_drain(e->session);
        }
}

void hbone_pool_expire(struct hbone_pool *p, uint64_t now_ns)
{
    for (int b = 0; b < POOL_BUCKETS; b++) {
        for (struct pool_entry *e = p->bucket[b], *next; e; e = next) {
            next = e->next;
            struct hbone_session *s = e->session;
            uint64_t idle = hbone_session_idle_since_ns(s);
            if (!hbone_session_established(s) &&
                now_ns - hbone_session_started_ns(s) > p->opts.handshake_timeout_ns)
                hbone_session_close(s, "handshake timed out");
            else if (idle && now_ns - idle > p->opts.idle_timeout_ns)
                hbone_session_close(s, "idle");
        }
    }
}

void hbone_pool_free(struct hbone_pool *p)
{
    if (!p)
        return;
    for (int b = 0; b < POOL_BUCKETS; b++)
        while (p->bucket[b])
            hbone_session_close(p->bucket[b]->session, "agent stopping");
    free(p);
}

void hbone_pool_get_stats(const struct hbone_pool *p, struct hbone_pool_stats *st)
{
    *st = p->stats;
}
