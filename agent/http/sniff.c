/* Protocol sniffing (see proxy.h): which captured connections are HTTP/1
 * when the configuration cannot say (an unnamed Service port), decided
 * from the client's first bytes as Istio's listener does, peeked with
 * MSG_PEEK so that the connection is intact for whichever carrier takes
 * it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/container.h"
#include "http/internal.h"
#include "proxy/conns.h"

#define SNIFF_PEEK 64

struct http_sniffer {
    struct http_proxy *hp;
    struct http_sniffer *prev, *next;
    struct loop_io io;
    struct conn *c;
    uint64_t deadline_ns;
    http_sniff_fn fn;
    void *ctx;
    struct loop_deferred release;
};

/* A request line starts with a method token, upper-case letters, and a
 * space ("GET ", "OPTIONS ", "PROPFIND "). The HTTP/2 preface starts "PRI
 * * HTTP/2.0": HTTP/2 with prior knowledge. */
int http_sniff_bytes(const char *p, size_t n)
{
    static const char h2[] = "PRI * HTTP/2.0";
    if (n >= 3 && memcmp(p, h2, 3) == 0) {
        size_t k = n < sizeof(h2) - 1 ? n : sizeof(h2) - 1;
        if (memcmp(p, h2, k) != 0)
            return HTTP_SNIFF_HTTP1; /* "PRI" then something else: a method named PRI... */
        return k == sizeof(h2) - 1 ? HTTP_SNIFF_HTTP2 : -EAGAIN;
    }
    for (size_t i = 0; i < n && i <= 16; i++) {
        if (p[i] == ' ')
            return i > 0 ? HTTP_SNIFF_HTTP1 : HTTP_SNIFF_OTHER;
        if (p[i] < 'A' || p[i] > 'Z')
            return HTTP_SNIFF_OTHER;
    }
    return n > 16 ? HTTP_SNIFF_OTHER : -EAGAIN;
}

static void sniffer_free_now(struct loop_deferred *d)
{
    free(container_of(d, struct http_sniffer, release));
}

static void sniffer_done(struct http_sniffer *sn, enum http_sniffed what)
{
    struct http_proxy *hp = sn->hp;
    loop_del(hp->loop, &sn->io);
    if (sn->prev)
        sn->prev->next = sn->next;
    else
        hp->sniffers = sn->next;
    if (sn->next)
        sn->next->prev = sn->prev;
    loop_defer(hp->loop, &sn->release);
    if (what == HTTP_SNIFF_GONE)
        conn_end(sn->c, -ECONNRESET, 0, 0, RESP_FLAG_DC);
    sn->fn(sn->ctx, sn->c, what);
}

static void sniffer_on_event(struct loop_io *io, uint32_t events)
{
    struct http_sniffer *sn = container_of(io, struct http_sniffer, io);
    char buf[SNIFF_PEEK];
    ssize_t n = recv(io->fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        sniffer_done(sn, HTTP_SNIFF_GONE);
        return;
    }
    int what = http_sniff_bytes(buf, (size_t)n);
    if (what == -EAGAIN) {
        if (events & (EPOLLRDHUP | EPOLLHUP)) /* no more is coming */
            sniffer_done(sn, HTTP_SNIFF_OTHER);
        /* else: level-triggered, so wait on a timer instead of spinning */
        else
            loop_set(sn->hp->loop, &sn->io, EPOLLRDHUP);
        return;
    }
    sniffer_done(sn, (enum http_sniffed)what);
}

int http_sniff(struct http_proxy *hp, struct conn *c, uint64_t timeout_ns, http_sniff_fn fn,
               void *ctx)
{
    struct http_sniffer *sn = calloc(1, sizeof(*sn));
    if (!sn)
        return -ENOMEM;
    *sn = (struct http_sniffer){.hp = hp,
                                .c = c,
                                .fn = fn,
                                .ctx = ctx,
                                .deadline_ns = loop_now_ns() + timeout_ns,
                                .io = {.fd = conn_app_fd(c), .cb = sniffer_on_event},
                                .release = {.fn = sniffer_free_now}};
    int rc = loop_add(hp->loop, &sn->io, EPOLLIN | EPOLLRDHUP);
    if (rc) {
        free(sn);
        return rc;
    }
    sn->next = hp->sniffers;
    if (hp->sniffers)
        hp->sniffers->prev = sn;
    hp->sniffers = sn;
    return 0;
}

void sniffers_tick(struct http_proxy *hp, uint64_t now_ns)
{
    for (struct http_sniffer *sn = hp->sniffers, *next; sn; sn = next) {
        next = sn->next;
        if (now_ns >= sn->deadline_ns) {
            sniffer_done(sn, HTTP_SNIFF_OTHER);
            continue;
        }
        if (!(sn->io.events & EPOLLIN)) { /* a partial token: look again */
            loop_set(hp->loop, &sn->io, EPOLLIN | EPOLLRDHUP);
        }
    }
}

void sniffers_free(struct http_proxy *hp)
{
    while (hp->sniffers)
        sniffer_done(hp->sniffers, HTTP_SNIFF_GONE);
}
