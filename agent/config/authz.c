/* AuthorizationPolicies compiled for the evaluator (policy/authz), once per
 * snapshot on the loader's thread, and selected per workload with Istio's
 * scoping: root-namespace policies apply in every namespace (with a
 * selector: to matching workloads anywhere), namespace policies to the
 * workloads their selector matches (all, without one). targetRef policies
 * are for waypoints and never apply here. CUSTOM (external authorization)
 * is not available: its rules are enforced as DENY, failing closed. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"
#include "policy/authz.h"

static struct authz_strings strings(const struct cfg_strs *s)
{
    return (struct authz_strings){s->v, s->n};
}

static int cidrs(struct arena *a, const struct cfg_strs *s, struct authz_cidrs *out)
{
    struct cidr *v = arena_array(a, s->n ? s->n : 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (cidr_parse(s->v[i], &v[n]) == 0) /* analyze rejects the others */
            n++;
    *out = (struct authz_cidrs){v, n};
    return 0;
}

static int ports(struct arena *a, const struct cfg_strs *s, struct authz_ports *out)
{
    uint16_t *v = arena_array(a, s->n ? s->n : 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < s->n; i++)
        v[i] = (uint16_t)strtoul(s->v[i], NULL, 10); /* validated by the decoder */
    *out = (struct authz_ports){v, s->n};
    return 0;
}

/* "name" is an account in the policy's own namespace (as istiod reads it). */
static int service_accounts(struct arena *a, const struct cfg_strs *s, const char *policy_ns,
                            struct authz_service_accounts *out)
{
    struct authz_service_account *v = arena_array(a, s->n ? s->n : 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        const char *slash = strchr(s->v[i], '/'); /* the decoder allows one at most */
        v[i].ns = slash ? arena_printf(a, "%.*s", (int)(slash - s->v[i]), s->v[i]) : policy_ns;
        v[i].name = slash ? slash + 1 : s->v[i];
        if (!v[i].ns)
            return -ENOMEM;
    }
    *out = (struct authz_service_accounts){v, s->n};
    return 0;
}

static enum authz_key when_key(const char *key)
{
    static const struct {
        const char *name;
        enum authz_key key;
    } keys[] = {{"source.ip", AUTHZ_KEY_SOURCE_IP},
                {"source.namespace", AUTHZ_KEY_SOURCE_NAMESPACE},
                {"source.principal", AUTHZ_KEY_SOURCE_PRINCIPAL},
                {"destination.ip", AUTHZ_KEY_DESTINATION_IP},
                {"destination.port", AUTHZ_KEY_DESTINATION_PORT}};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(key, keys[i].name) == 0)
            return keys[i].key;
    return AUTHZ_KEY_L7;
}

/* "request.headers[NAME]" -> NAME (in the arena), as istiod reads it:
 * exactly the brackets after the prefix; anything else is no header. */
static int when_header(struct arena *a, const char *key, const char **out)
{
    static const char prefix[] = "request.headers[";
    size_t n = strlen(key), p = sizeof(prefix) - 1;
    *out = NULL;
    if (n <= p + 1 || strncmp(key, prefix, p) != 0 || key[n - 1] != ']')
        return 0;
    *out = arena_printf(a, "%.*s", (int)(n - p - 1), key + p);
    return *out ? 0 : -ENOMEM;
}

static int compile_rule(struct arena *a, const struct cfg_authz_rule *r, const char *policy_ns,
                        struct authz_rule *out)
{
    struct authz_source *from = arena_array(a, r->nfrom ? r->nfrom : 1, sizeof(*from));
    struct authz_operation *to = arena_array(a, r->nto ? r->nto : 1, sizeof(*to));
    struct authz_condition *when = arena_array(a, r->nwhen ? r->nwhen : 1, sizeof(*when));
    if (!from || !to || !when)
        return -ENOMEM;
    for (size_t i = 0; i < r->nfrom; i++) {
        const struct cfg_authz_source *s = &r->from[i];
        from[i] = (struct authz_source){
            .principals = strings(&s->principals),
            .not_principals = strings(&s->not_principals),
            .namespaces = strings(&s->namespaces),
            .not_namespaces = strings(&s->not_namespaces),
            .has_l7 = s->undecidable != NULL,
            .request_principals = s->request_principals.n > 0,
            .not_request_principals = s->not_request_principals.n > 0,
            .trust_domains = strings(&s->trust_domains),
            .not_trust_domains = strings(&s->not_trust_domains),
        };
        if (cidrs(a, &s->ip_blocks, &from[i].ip_blocks) ||
            cidrs(a, &s->not_ip_blocks, &from[i].not_ip_blocks) ||
            service_accounts(a, &s->service_accounts, policy_ns, &from[i].service_accounts) ||
            service_accounts(a, &s->not_service_accounts, policy_ns, &from[i].not_service_accounts))
            return -ENOMEM;
    }
    for (size_t i = 0; i < r->nto; i++) {
        const struct cfg_authz_operation *o = &r->to[i];
        to[i] = (struct authz_operation){.hosts = strings(&o->hosts),
                                         .not_hosts = strings(&o->not_hosts),
                                         .methods = strings(&o->methods),
                                         .not_methods = strings(&o->not_methods),
                                         .paths = strings(&o->paths),
                                         .not_paths = strings(&o->not_paths)};
        if (ports(a, &o->ports, &to[i].ports) || ports(a, &o->not_ports, &to[i].not_ports))
            return -ENOMEM;
    }
    for (size_t i = 0; i < r->nwhen; i++) {
        when[i] = (struct authz_condition){.key = when_key(r->when[i].key),
                                           .values = strings(&r->when[i].values),
                                           .not_values = strings(&r->when[i].not_values)};
        if (when_header(a, r->when[i].key, &when[i].header))
            return -ENOMEM;
        if (when[i].header)
            when[i].key = AUTHZ_KEY_REQUEST_HEADER;
    }
    *out = (struct authz_rule){from, r->nfrom, to, r->nto, when, r->nwhen};
    return 0;
}

/* "ns NUL key NUL value", its length without the final NUL, or -1 when it
 * does not fit buf[len]. By hand: selection runs per request. */
static int selector_key(char *buf, size_t len, const char *ns, const struct cfg_kv *kv)
{
    size_t a = strlen(ns), b = strlen(kv->key), c = strlen(kv->value), n = a + b + c + 2;
    if (n >= len || n > INT_MAX)
        return -1;
    memcpy(buf, ns, a + 1);
    memcpy(buf + a + 1, kv->key, b + 1);
    memcpy(buf + a + b + 2, kv->value, c + 1);
    return (int)n;
}

/* Indexes by scope, so selecting for a workload costs a lookup per label
 * of the workload, not a scan of the namespace's policies. */
static int index_policies(struct cfg_snapshot *s)
{
    const struct cfg_list *l = &s->kinds[CFG_AUTHORIZATION_POLICY];
    if (cfg_index_init(&s->authz_plain, &s->arena, l->n) ||
        cfg_index_init(&s->authz_by_label, &s->arena, l->n))
        return -ENOMEM;
    char key[768];
    for (size_t i = 0; i < l->n; i++) {
        const struct cfg_authorization_policy *ap = l->v[i];
        if (ap->has_target_ref)
            continue; /* for waypoints: never applies here */
        if (!ap->selector.set || !ap->selector.match.n) {
            if (cfg_index_put_str(&s->authz_plain, &s->arena, ap->meta.ns, ap))
                return -ENOMEM;
            continue;
        }
        int n = selector_key(key, sizeof(key), ap->meta.ns, &ap->selector.match.v[0]);
        if (n > 0 && cfg_index_put(&s->authz_by_label, &s->arena, key, (size_t)n, ap))
            return -ENOMEM;
    }
    return 0;
}

int cfg_authz_compile(struct cfg_snapshot *s)
{
    size_t n = s->kinds[CFG_AUTHORIZATION_POLICY].n;
    s->authz = arena_array(&s->arena, n ? n : 1, sizeof(*s->authz));
    if (!s->authz)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct cfg_authorization_policy *ap = s->kinds[CFG_AUTHORIZATION_POLICY].v[i];
        struct authz_policy *p = &s->authz[i];
        struct authz_rule *rules =
            arena_array(&s->arena, ap->nrules ? ap->nrules : 1, sizeof(*rules));
        p->name = arena_printf(&s->arena, "%s/%s", ap->meta.ns, ap->meta.name);
        if (!rules || !p->name)
            return -ENOMEM;
        for (size_t r = 0; r < ap->nrules; r++)
            if (compile_rule(&s->arena, &ap->rules[r], ap->meta.ns, &rules[r]))
                return -ENOMEM;
        p->rules = rules;
        p->nrules = ap->nrules;
        p->action = ap->action == CFG_AUTHZ_ALLOW   ? AUTHZ_ALLOW
                    : ap->action == CFG_AUTHZ_AUDIT ? AUTHZ_AUDIT
                                                    : AUTHZ_DENY; /* DENY, and CUSTOM closed */
    }
    return index_policies(s);
}

static size_t add(const struct cfg_snapshot *s, const struct cfg_authorization_policy *ap,
                  struct authz_policy *out, size_t n, size_t max)
{
    if (n < max)
        out[n] = s->authz[ap->meta.ord]; /* its compiled twin */
    return n + 1;
}

/* The policies of `ns` that select a workload with `labels`. */
static size_t collect_ns(const struct cfg_snapshot *s, const char *ns,
                         const struct cfg_labels *labels, struct authz_policy *out, size_t n,
                         size_t max)
{
    struct cfg_iter it = {0};
    const struct cfg_authorization_policy *ap;
    while ((ap = cfg_index_next(&s->authz_plain, ns, strlen(ns), &it)))
        n = add(s, ap, out, n, max);
    char key[768];
    for (size_t i = 0; labels && i < labels->n; i++) {
        int kl = selector_key(key, sizeof(key), ns, &labels->v[i]);
        it = (struct cfg_iter){0};
        while (kl > 0 && (ap = cfg_index_next(&s->authz_by_label, key, (size_t)kl, &it)))
            if (cfg_labels_match(&ap->selector.match, labels))
                n = add(s, ap, out, n, max);
    }
    return n;
}

size_t cfg_authz_select(const struct cfg_snapshot *s, const char *ns,
                        const struct cfg_labels *labels, struct authz_policy *out, size_t max)
{
    size_t n = collect_ns(s, s->root_ns, labels, out, 0, max);
    if (ns && strcmp(ns, s->root_ns) != 0)
        n = collect_ns(s, ns, labels, out, n, max);
    return n;
}
