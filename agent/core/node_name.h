/* A node's name, as `meshd --node` takes it, and the bounded instance name
 * derived from it. A Kubernetes node name is a DNS-1123 subdomain (EKS:
 * ip-10-0-0-1.ec2.internal; many clusters use FQDNs): lower-case
 * alphanumerics, '-' and '.', each dot-separated label 1..63 and
 * alphanumeric at both ends, 253 at most. The name goes verbatim into the
 * kube field selector (its characters are URL-unreserved), telemetry and
 * admin output; the instance name goes into paths with tight limits (the
 * bpffs pin directory, the default state directory, whose admin socket must
 * fit sun_path's 108 bytes; bpffs refuses any name with a '.' in it:
 * kernel/bpf/inode.c, bpf_lookup). */
#ifndef MESHD_CORE_NODE_NAME_H
#define MESHD_CORE_NODE_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define NODE_NAME_MAX     253 /* a DNS-1123 subdomain */
#define NODE_INSTANCE_MAX 63  /* a DNS-1123 label: one path component, short */

/* Whether s (NUL-terminated) is a valid node name. */
bool node_name_valid(const char *s);

/* The instance name of a valid node name: the name with each '.' as '_'
 * ('_' is in no node name: distinct names stay distinct) when it has at
 * most NODE_INSTANCE_MAX bytes, else the first 46 bytes of that, '-', and
 * 16 hex digits of a 64-bit FNV-1a hash of the whole name (readable,
 * bounded, and two names sharing a prefix differ). Short names without dots
 * are their own instance name. out holds NODE_INSTANCE_MAX + 1.
 * -EINVAL for an invalid name or a short out. */
int node_instance_name(const char *node, char *out, size_t n);

#endif
