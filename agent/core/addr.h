/* Socket addresses: conversion between the kernel/BPF form (meshd_addr) and
 * sockaddr, and formatting for logs and records ("1.2.3.4:80", "[::1]:80"). */
#ifndef MESHD_CORE_ADDR_H
#define MESHD_CORE_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "meshd/capture.h"

#define ADDR_STRLEN 56 /* "[" INET6_ADDRSTRLEN "]:65535" */

/* IPv4-mapped IPv6 addresses come out as plain IPv4. Returns 0 or -EINVAL. */
int addr_to_sockaddr(const struct meshd_addr *a, struct sockaddr_storage *ss, socklen_t *len);
int addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct meshd_addr *a);
/* Always NUL-terminates; "?" for an unknown family. */
const char *addr_format(const struct meshd_addr *a, char *buf, size_t len);
/* The address alone ("1.2.3.4", "2001:db8::1"), for IPs without a port. */
const char *addr_format_ip(const struct meshd_addr *a, char *buf, size_t len);
/* Parses "1.2.3.4:80", "[fd00::1]:80"; returns 0 or -EINVAL. */
int addr_parse(const char *s, struct meshd_addr *a);
bool addr_equal(const struct meshd_addr *x, const struct meshd_addr *y);

#endif
