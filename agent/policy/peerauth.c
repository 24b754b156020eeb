/* PeerAuthentication precedence (see peerauth.h). */
#include "policy/peerauth.h"

#include <string.h>

/* The first policy in `ns` for the level: selector-less (namespace), or
 * with a selector matching `labels` (workload). */
static const struct cfg_peer_authentication *first_in(const struct cfg_snapshot *s, const char *ns,
                                                      const struct cfg_labels *labels,
                                                      bool workload)
{
    struct cfg_iter it = {0};
    const struct cfg_peer_authentication *pa;
    while ((pa = cfg_next_in_ns(s, CFG_PEER_AUTHENTICATION, ns, &it))) {
        bool has_selector = pa->selector.set && pa->selector.match.n;
        if (!workload && !has_selector)
            return pa;
        if (workload && has_selector && labels && cfg_labels_match(&pa->selector.match, labels))
            return pa;
    }
    return NULL;
}

static void apply(struct peerauth_result *r, const struct cfg_peer_authentication *pa,
                  enum cfg_mtls mode)
{
    if (pa && mode != CFG_MTLS_UNSET) {
        r->mode = mode;
        r->by = pa;
    }
}

void peerauth_mode(const struct cfg_snapshot *s, const char *ns, const struct cfg_labels *labels,
                   uint16_t port, struct peerauth_result *out)
{
    out->mode = CFG_MTLS_PERMISSIVE;
    out->by = NULL;
    const struct cfg_peer_authentication *mesh =
        first_in(s, cfg_snapshot_root_namespace(s), NULL, false);
    apply(out, mesh, mesh ? mesh->mode : CFG_MTLS_UNSET);
    if (!ns)
        return;
    if (strcmp(ns, cfg_snapshot_root_namespace(s)) != 0) {
        const struct cfg_peer_authentication *nsp = first_in(s, ns, NULL, false);
        apply(out, nsp, nsp ? nsp->mode : CFG_MTLS_UNSET);
    }
    const struct cfg_peer_authentication *w = first_in(s, ns, labels, true);
    if (!w)
        return;
    apply(out, w, w->mode);
    for (size_t i = 0; i < w->nports; i++)
        if (w->ports[i].port == port)
            apply(out, w, w->ports[i].mode);
}
