/* Per-pod inbound capture: the sk_lookup program of bpf/inbound.bpf.c,
 * loaded once per enrolled pod with the pod's 15006 listeners in its own
 * sockmap, attached to the pod's netns and pinned as
 * <pin_dir>/inbound_<netns cookie> so a restarted agent can take it over. */
#ifndef MESHD_CAPTURE_INBOUND_LOOKUP_H
#define MESHD_CAPTURE_INBOUND_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct inbound_lookup;

/* lsn6 may be -1 (pod without IPv6). Returns 0 or -errno. */
int inbound_lookup_attach(const char *pin_dir, uint64_t netns_cookie, int netns_fd, int lsn4,
                          int lsn6, struct inbound_lookup **out);
/* Unpins (and so detaches) the inbound links under pin_dir whose netns
 * cookie is not in keep[0..n): pods a previous agent had that are gone. */
void inbound_lookup_prune(const char *pin_dir, const uint64_t *keep, size_t n);
/* The fd of the pod's meshd_in_self map (meshd's transparent connections
 * to its app, which the program must pass to the app), borrowed. */
int inbound_lookup_self_map(const struct inbound_lookup *il);
/* Detaches and unpins. Accepts NULL. */
void inbound_lookup_detach(struct inbound_lookup *il);
/* Frees the agent's side but leaves the link pinned and attached (the
 * agent stops, the pod stays enrolled): with the listeners closed the
 * sockmap is empty and the program drops, until the next agent takes the
 * pin over. Accepts NULL. */
void inbound_lookup_close(struct inbound_lookup *il);

#endif
