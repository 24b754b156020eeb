/* ClientHello waits (see sni_peek.h). Edge-triggered: each new segment of
 * a hello split over several wakes the wait once, and the bytes already
 * peeked never make level-triggered epoll spin. */
#include "gateway/sni_peek.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "core/container.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/upstream.h"
#include "gateway/sni.h"

#define PEEK_TIMEOUT_NS  (10ull * 1000000000ull)
#define PEEK_MAX_PENDING 512

struct sni_peek {
    struct sni_peeks *sp;
    struct loop_io io;
    void *user;
    uint64_t started_ns;
    struct sni_peek *prev, *next;
    struct loop_deferred release;
};

static void free_now(struct loop_deferred *d)
{
    free(container_of(d, struct sni_peek, release));
}

/* Off the list; the socket to the callee (sni != NULL) or reset. */
static void finish(struct sni_peek *pk, const char *sni)
{
    struct sni_peeks *sp = pk->sp;
    loop_del(sp->loop, &pk->io);
    if (pk->prev)
        pk->prev->next = pk->next;
    else
        sp->head = pk->next;
    if (pk->next)
        pk->next->prev = pk->prev;
    else
        sp->tail = pk->prev;
    sp->n--;
    loop_defer(sp->loop, &pk->release);
    if (sni) {
        sp->done(sp->ctx, pk->user, pk->io.fd, sni);
        return;
    }
    close_with_reset(pk->io.fd);
    if (sp->user_free)
        sp->user_free(pk->user);
}

static void on_event(struct loop_io *io, uint32_t events)
{
    struct sni_peek *pk = container_of(io, struct sni_peek, io);
    uint8_t buf[SNI_PEEK_MAX];
    ssize_t n = recv(io->fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    char sni[256];
    int rc = n > 0 ? sni_parse(buf, (size_t)n, sni, sizeof(sni)) : -ECONNRESET;
    if (rc == -EAGAIN && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return; /* the rest of the hello wakes us (edge-triggered) */
    if (rc) {
        pk->sp->refused++;
        if (n > 0)
            log_ratelimited(LOG_INFO, "gateway: PASSTHROUGH: not a TLS ClientHello (%d); reset",
                            rc);
        finish(pk, NULL);
        return;
    }
    finish(pk, sni);
}

int sni_peek_start(struct sni_peeks *sp, int fd, void *user)
{
    size_t max = sp->max_pending ? sp->max_pending : PEEK_MAX_PENDING;
    while (sp->n >= max && sp->head) {
        sp->evicted++;
        finish(sp->head, NULL);
    }
    struct sni_peek *pk = calloc(1, sizeof(*pk));
    if (!pk) {
        close_with_reset(fd);
        if (sp->user_free)
            sp->user_free(user);
        return -ENOMEM;
    }
    *pk = (struct sni_peek){.sp = sp,
                            .io = {.fd = fd, .cb = on_event},
                            .user = user,
                            .started_ns = loop_now_ns(),
                            .prev = sp->tail,
                            .release = {.fn = free_now}};
    if (sp->tail)
        sp->tail->next = pk;
    else
        sp->head = pk;
    sp->tail = pk;
    sp->n++;
    int rc = loop_add(sp->loop, &pk->io, EPOLLIN | EPOLLRDHUP | EPOLLET);
    if (rc) {
        finish(pk, NULL);
        return rc;
    }
    return 0;
}

void sni_peeks_tick(struct sni_peeks *sp, uint64_t now_ns)
{
    uint64_t limit = sp->timeout_ns ? sp->timeout_ns : PEEK_TIMEOUT_NS;
    while (sp->head && now_ns - sp->head->started_ns > limit) {
        sp->timeouts++;
        finish(sp->head, NULL);
    }
}

void sni_peeks_close_all(struct sni_peeks *sp)
{
    while (sp->head)
        finish(sp->head, NULL);
}
