/* Kubernetes object names, checked as the API server checks them: a
 * DNS-1123 label (namespaces: [a-z0-9-], alphanumeric at both ends, at
 * most 63) or subdomain (most names: dots too, at most 253). For every
 * place a name from outside becomes a key or a path. */
#ifndef MESHD_CORE_K8SNAME_H
#define MESHD_CORE_K8SNAME_H

#include <stdbool.h>
#include <stddef.h>

/* The first n bytes of s; `dots` for a subdomain. */
bool k8s_name_valid(const char *s, size_t n, size_t max, bool dots);

#endif
