/* Waiting for a client's ClientHello on a PASSTHROUGH gateway port: its
 * bytes are peeked (MSG_PEEK, never consumed: the connection goes on
 * untouched to the backend, which terminates TLS), at most one TLS record,
 * within `timeout_ns`, with at most `max_pending` clients waiting (past
 * that the oldest is reset, as for handshakes: gateway/edge_conn.h). */
#ifndef MESHD_GATEWAY_SNI_PEEK_H
#define MESHD_GATEWAY_SNI_PEEK_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct sni_peek;

/* The hello's server name ("" : none): `fd` and `user` are the callee's. */
typedef void (*sni_peek_done_fn)(void *ctx, void *user, int fd, const char *sni);

struct sni_peeks {
    struct loop *loop; /* borrowed */
    uint64_t timeout_ns;
    size_t max_pending;
    sni_peek_done_fn done;
    void (*user_free)(void *user);
    void *ctx;
    /* private */
    struct sni_peek *head, *tail; /* oldest first */
    size_t n;
    uint64_t refused, timeouts, evicted;
};

/* Waits on accepted socket `fd` (taken over). -errno: fd reset, `user`
 * released. */
int sni_peek_start(struct sni_peeks *sp, int fd, void *user);
void sni_peeks_tick(struct sni_peeks *sp, uint64_t now_ns);
void sni_peeks_close_all(struct sni_peeks *sp);

#endif
