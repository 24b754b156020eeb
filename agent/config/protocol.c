/* Istio's protocol selection for a port (see protocol.h). */
#include "config/protocol.h"

#include <string.h>
#include <strings.h>

/* Ports Istio never sniffs when their name says nothing (server-first
 * protocols): SMTP, DNS, MySQL, MongoDB. */
static bool well_known_port(uint16_t port)
{
    return port == 25 || port == 53 || port == 3306 || port == 27017;
}

/* Istio's protocol.Parse over name[0..len), case-insensitive; -1 for a
 * name it does not know. */
static int parse_protocol(const char *name, size_t len)
{
    static const struct {
        const char *name;
        enum http_proto proto;
    } names[] = {
        {"http", PROTO_HTTP},
        {"http_proxy", PROTO_HTTP},
        {"http2", PROTO_HTTP2},
        {"h2c", PROTO_HTTP2},
        {"kubernetes.io/h2c", PROTO_HTTP2},
        {"grpc", PROTO_GRPC},
        {"grpc-web", PROTO_GRPC},
        {"kubernetes.io/ws", PROTO_HTTP},
        {"tcp", PROTO_TCP},
        {"udp", PROTO_TCP},
        {"https", PROTO_TCP},
        {"tls", PROTO_TCP},
        {"kubernetes.io/wss", PROTO_TCP},
        {"mongo", PROTO_TCP},
        {"redis", PROTO_TCP},
        {"mysql", PROTO_TCP},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == len && strncasecmp(names[i].name, name, len) == 0)
            return (int)names[i].proto;
    return -1;
}

enum http_proto http_port_protocol(const struct cfg_service_port *p)
{
    if (p->protocol &&
        (strcasecmp(p->protocol, "UDP") == 0 || strcasecmp(p->protocol, "SCTP") == 0))
        return PROTO_TCP;
    /* appProtocol, when set, is read instead of the name (Istio's
     * ConvertProtocol), with the same prefix rule. */
    const char *name = p->app_protocol ? p->app_protocol : p->name;
    int proto = -1;
    if (name && strncasecmp(name, "grpc-web", 8) == 0) {
        proto = PROTO_GRPC;
    } else if (name) {
        const char *dash = strchr(name, '-');
        proto = parse_protocol(name, dash ? (size_t)(dash - name) : strlen(name));
    }
    if (proto >= 0)
        return (enum http_proto)proto;
    return well_known_port(p->port) ? PROTO_TCP : PROTO_AUTO;
}

/* A ServiceEntry port: its protocol field (HTTP, HTTP2, GRPC, TCP, ...). */
enum http_proto http_entry_port_protocol(const struct cfg_named_port *p)
{
    int proto = p->protocol ? parse_protocol(p->protocol, strlen(p->protocol)) : -1;
    if (proto >= 0)
        return (enum http_proto)proto;
    return well_known_port(p->number) ? PROTO_TCP : PROTO_AUTO;
}
