/* The server name of a TLS ClientHello, read from a client's first bytes
 * without terminating anything (Envoy's tls_inspector), for the ingress
 * gateway's PASSTHROUGH servers. Hostile input: every length is checked
 * against what is there; a hello split over several records (more than
 * 16 KiB) is refused rather than reassembled. Pure function. */
#ifndef MESHD_GATEWAY_SNI_H
#define MESHD_GATEWAY_SNI_H

#include <stddef.h>
#include <stdint.h>

#define SNI_PEEK_MAX (5 + 16384) /* one TLS record */

/* 0 with the host name in `sni` ("" when the hello has none), -EAGAIN
 * when more bytes are needed, -EINVAL when this is no ClientHello (or
 * its name is not a plausible host name), -E2BIG past one record. */
int sni_parse(const uint8_t *p, size_t n, char *sni, size_t len);

#endif
