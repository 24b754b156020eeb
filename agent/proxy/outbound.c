/* Outbound proxy: in-pod 15001 listeners and the original destination. */
#include "proxy/outbound.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "capture/capture.h"
#include "core/addr.h"
#include "core/log.h"
#include "enroll/pods.h"
#include "proxy/conns.h"
#include "proxy/listener.h"

struct outbound {
    struct loop *loop;       /* borrowed */
    struct capture *capture; /* borrowed */
    struct conns *conns;     /* borrowed */
    uint16_t port;
};

/* Per pod: IPv4 and IPv6 loopback listeners. */
struct outbound_pod {
    struct listener l[2];
    struct outbound *ob;
    struct pod *pod; /* borrowed: the registry frees it after detach */
};

int outbound_new(struct loop *loop, struct capture *capture, struct conns *conns, uint16_t port,
                 struct outbound **out)
{
    struct outbound *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return -ENOMEM;
    *ob = (struct outbound){.loop = loop, .capture = capture, .conns = conns, .port = port};
    *out = ob;
    return 0;
}

void outbound_free(struct outbound *ob)
{
    free(ob);
}

static void outbound_on_accept(struct listener *l, int fd, const struct sockaddr *peer,
                               socklen_t peerlen)
{
    struct outbound_pod *op = l->ctx;
    struct pod *pod = op->pod;
    struct meshd_flow_key key = {.netns_cookie = pod->netns_cookie};
    char ref[RECORD_POD_LEN];
    snprintf(ref, sizeof(ref), "%s/%s", pod->ns, pod->name);
    addr_from_sockaddr(peer, peerlen, &key.src);
    struct conn *c = conn_begin(op->ob->conns, fd, "outbound", ref, &key.src);
    if (!c)
        return;
    struct meshd_orig_dst od;
    int rc = capture_orig_dst_take(op->ob->capture, &key, &od);
    if (rc) {
        /* Fail closed: without the original destination there is nowhere
         * safe to send the bytes. */
        char src[ADDR_STRLEN];
        log_ratelimited(LOG_WARN, "outbound: %s: no original destination for %s; refused", ref,
                        addr_format(&key.src, src, sizeof(src)));
        conn_refuse(c, rc, "NR");
        return;
    }
    conn_record(c)->orig_dst = od.dst;
    conn_forward(c, pod->netns_fd, NULL);
}

int outbound_attach_pod(void *ctx, struct pod *pod)
{
    struct outbound *ob = ctx;
    struct outbound_pod *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    op->ob = ob;
    op->pod = pod;
    struct meshd_addr a4 = listener_addr(AF_INET, ob->port, 1);
    struct meshd_addr a6 = listener_addr(AF_INET6, ob->port, 1);
    int err = listener_open(&op->l[0], ob->loop, pod->netns_fd, &a4, outbound_on_accept, op);
    if (err) {
        free(op);
        return err;
    }
    /* A pod without IPv6 (disabled, or lo has no ::1) is IPv4-only. */
    err = listener_open(&op->l[1], ob->loop, pod->netns_fd, &a6, outbound_on_accept, op);
    if (err)
        log_warn("outbound: %s/%s: no IPv6 listener (%s); IPv6 connects will be refused", pod->ns,
                 pod->name, strerror(-err));
    pod->outbound = op;
    return 0;
}

void outbound_detach_pod(void *ctx, struct pod *pod)
{
    struct outbound_pod *op = pod->outbound;
    if (!op)
        return;
    listener_close(&op->l[0]);
    listener_close(&op->l[1]);
    free(op);
    pod->outbound = NULL;
}
