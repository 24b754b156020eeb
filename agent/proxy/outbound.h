/* Outbound proxy: accepts what the BPF capture redirected to the pod's
 * 127.0.0.1:15001 / [::1]:15001, recovers where the app meant to go, and
 * hands the connection on (today: plain TCP from the same pod netns). */
#ifndef MESHD_PROXY_OUTBOUND_H
#define MESHD_PROXY_OUTBOUND_H

#include <stdint.h>

struct capture;
struct conns;
struct loop;
struct pod;
struct outbound;

/* `loop`, `capture` and `conns` are borrowed. */
int outbound_new(struct loop *loop, struct capture *capture, struct conns *conns, uint16_t port,
                 struct outbound **out);
void outbound_free(struct outbound *ob);

/* pod_hooks for the enrollment registry. */
int outbound_attach_pod(void *ob, struct pod *pod);
void outbound_detach_pod(void *ob, struct pod *pod);

#endif
