/* The ingress gateway's resources: networking.istio.io Gateway (servers,
 * ports, hosts, tls) and the PEM texts of the Secrets a server's
 * credentialName names (a VirtualService's tls[] routes: decode_vs_tls.c).
 *
 * Validation follows Istio's ValidateGateway / validateServer /
 * validateServerPort / validateTLSOptions and its host rules
 * (ValidateNamespaceSlashWildcardHostname): each error rejects the
 * Gateway (IST0106), each of Istio's warnings is a warning. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "config/decode.h"
#include "config/gateway.h"

/* ---- names ---- */

static const char *const tls_modes[] = {
    "PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL", NULL};
static const char *const tls_versions[] = {"TLS_AUTO", "TLSV1_0", "TLSV1_1",
                                           "TLSV1_2",  "TLSV1_3", NULL};
/* Istio's protocol.Parse (case-insensitive); TLS ones and HTTP ones. */
static const char *const protocols[] = {"HTTP",  "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO",
                                        "REDIS", "MYSQL", "TCP",  "TLS",      "UDP",   NULL};
/* Envoy's cipher names Istio accepts (security.IsValidCipherSuite). */
static const char *const cipher_names[] = {"ECDHE-ECDSA-AES256-GCM-SHA384",
                                           "ECDHE-RSA-AES256-GCM-SHA384",
                                           "ECDHE-ECDSA-AES128-GCM-SHA256",
                                           "ECDHE-RSA-AES128-GCM-SHA256",
                                           "AES256-GCM-SHA384",
                                           "AES128-GCM-SHA256",
                                           "ECDHE-ECDSA-CHACHA20-POLY1305",
                                           "ECDHE-RSA-CHACHA20-POLY1305",
                                           "ECDHE-ECDSA-AES128-SHA",
                                           "ECDHE-RSA-AES128-SHA",
                                           "ECDHE-ECDSA-AES256-SHA",
                                           "ECDHE-RSA-AES256-SHA",
                                           "AES128-SHA",
                                           "AES256-SHA",
                                           "DES-CBC3-SHA",
                                           "ECDHE-ECDSA-AES128-SHA256",
                                           "ECDHE-RSA-AES128-SHA256",
                                           "AES128-SHA256",
                                           NULL};

static bool in_list(const char *s, const char *const *names, bool nocase)
{
    for (size_t i = 0; s && names[i]; i++)
        if (nocase ? strcasecmp(s, names[i]) == 0 : strcmp(s, names[i]) == 0)
            return true;
    return false;
}

bool cfg_gateway_protocol_is_tls(const char *p)
{
    return p && (strcasecmp(p, "HTTPS") == 0 || strcasecmp(p, "TLS") == 0);
}

bool cfg_gateway_protocol_is_http(const char *p)
{
    return p && (strcasecmp(p, "HTTP") == 0 || strcasecmp(p, "HTTP2") == 0 ||
                 strcasecmp(p, "GRPC") == 0 || strcasecmp(p, "GRPC-WEB") == 0);
}

/* ---- hosts ---- */

static bool label_ok(const char *p, size_t n, bool wildcard_first)
{
    if (wildcard_first && n && p[0] == '*') {
        if (n == 1)
            return true;
        p++, n--;
    }
    if (!n || n > 63 || !isalnum((unsigned char)p[0]) || !isalnum((unsigned char)p[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '-')
            return false;
    return true;
}

/* Istio's ValidateWildcardDomain: a wildcard only in the first label. */
bool cfg_valid_wildcard_host(const char *h)
{
    size_t len = strlen(h);
    if (!len || len > 255)
        return false;
    for (size_t first = 1; *h; first = 0) {
        size_t n = strcspn(h, ".");
        if (!label_ok(h, n, first))
            return false;
        h += n;
        if (*h == '.' && !*++h)
            return false; /* a trailing dot, or an empty label */
    }
    return true;
}

/* "ns/host", "*" / "." as the namespace; a bare host means any namespace. */
static const char *host_error(const char *host)
{
    const char *slash = strchr(host, '/');
    const char *h = slash ? slash + 1 : host;
    if (slash) {
        size_t n = (size_t)(slash - host);
        char ns[64];
        if (n == 0 || n >= sizeof(ns))
            return "namespace must be \"*\", \".\" or a valid DNS label";
        memcpy(ns, host, n);
        ns[n] = '\0';
        if (strcmp(ns, "*") != 0 && strcmp(ns, ".") != 0 && !cfg_valid_dns_label(ns))
            return "namespace must be \"*\", \".\" or a valid DNS label";
    }
    if (strcmp(h, "*") == 0)
        return NULL;
    return cfg_valid_wildcard_host(h) ? NULL : "is not a valid (wildcard) domain name";
}

/* ---- Gateway ---- */

static void decode_port(struct cfg_dec *d, const struct ynode *v, struct cfg_gateway_server *s)
{
    size_t m = dec_push(d, "port");
    const char *k;
    const struct ynode *pv;
    for (size_t j = 0; dec_each(d, v, &j, &k, &pv);) {
        if (dec_is(k, "number"))
            dec_uint(d, pv, k, 65535, &s->port);
        else if (dec_is(k, "name"))
            dec_str(d, pv, k, &s->port_name);
        else if (dec_is(k, "protocol"))
            dec_str(d, pv, k, &s->protocol);
        else if (dec_is(k, "targetPort") && dec_port(d, pv, k, &s->target_port) && s->target_port)
            dec_warn(d, pv, IST_SCHEMA, "targetPort has no impact on Gateways");
        else if (!dec_is(k, "targetPort"))
            dec_unknown(d, k, pv);
    }
    if (s->protocol && !in_list(s->protocol, protocols, true))
        dec_error(d, v,
                  "invalid protocol \"%.32s\", supported protocols are HTTP, HTTP2, GRPC, "
                  "GRPC-WEB, MONGO, REDIS, MYSQL, TCP",
                  s->protocol);
    if (!s->port)
        dec_error(d, v, "port number is required (1-65535)");
    if (!s->port_name)
        dec_error(d, v, "port name must be set");
    dec_pop(d, m);
}

static void decode_tls(struct cfg_dec *d, const struct ynode *v, struct cfg_gateway_server *s)
{
    static const char *const accepted[] = {"credentialNames",       "caCrl",
                                           "verifyCertificateSpki", "verifyCertificateHash",
                                           "tlsCertificates",       NULL};
    size_t m = dec_push(d, "tls");
    s->has_tls = true;
    int x;
    const char *k;
    const struct ynode *tv;
    for (size_t j = 0; dec_each(d, v, &j, &k, &tv);) {
        if (dec_is(k, "mode") && dec_enum(d, tv, k, tls_modes, &x) && x >= 0)
            s->tls_mode = tls_modes[x];
        else if (dec_is(k, "minProtocolVersion") && dec_enum(d, tv, k, tls_versions, &x) && x >= 0)
            s->min_protocol = tls_versions[x];
        else if (dec_is(k, "maxProtocolVersion") && dec_enum(d, tv, k, tls_versions, &x) && x >= 0)
            s->max_protocol = tls_versions[x];
        else if (dec_is(k, "credentialName"))
            dec_str(d, tv, k, &s->credential_name);
        else if (dec_is(k, "httpsRedirect"))
            dec_bool(d, tv, k, &s->https_redirect);
        else if (dec_is(k, "cipherSuites"))
            dec_strs(d, tv, k, &s->cipher_suites);
        else if (dec_is(k, "subjectAltNames"))
            dec_strs(d, tv, k, &s->subject_alt_names);
        else if (dec_is(k, "serverCertificate"))
            dec_str(d, tv, k, &s->server_certificate);
        else if (dec_is(k, "privateKey"))
            dec_str(d, tv, k, &s->private_key);
        else if (dec_is(k, "caCertificates"))
            dec_str(d, tv, k, &s->ca_certificates);
        else if (!in_list(k, accepted, false) && !dec_is(k, "mode") &&
                 !dec_is(k, "minProtocolVersion") && !dec_is(k, "maxProtocolVersion"))
            dec_unknown(d, k, tv);
    }
    if (!s->tls_mode)
        s->tls_mode = "PASSTHROUGH"; /* the proto's zero value */
    dec_pop(d, m);
}

/* validateTLSOptions, for the fields meshd reads. */
static void check_tls(struct cfg_dec *d, const struct ynode *n, const struct cfg_gateway_server *s)
{
    const char *mode = s->tls_mode;
    if (s->min_protocol &&
        (!strcmp(s->min_protocol, "TLSV1_0") || !strcmp(s->min_protocol, "TLSV1_1")) &&
        !s->cipher_suites.n)
        dec_warn(d, n, IST_SCHEMA,
                 "TLS version below TLSV1_2 require setting compatible ciphers as by default "
                 "they no longer include compatible ciphers.");
    for (size_t i = 0; i < s->cipher_suites.n; i++) {
        if (!in_list(s->cipher_suites.v[i], cipher_names, false))
            dec_warn(d, n, IST_SCHEMA, "ignoring invalid cipher suites: [%.64s]",
                     s->cipher_suites.v[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->cipher_suites.v[i], s->cipher_suites.v[j]) == 0)
                dec_warn(d, n, IST_SCHEMA, "ignoring duplicate cipher suites: [%.64s]",
                         s->cipher_suites.v[i]);
    }
    bool files = s->server_certificate || s->private_key || s->ca_certificates;
    if (!strcmp(mode, "ISTIO_MUTUAL")) {
        /* Istio's errors, one per field; the gateway presents its own
         * workload certificate and admits clients of the mesh CA. */
        static const char hint[] = " (ISTIO_MUTUAL presents the gateway's own mesh certificate "
                                   "and admits mesh-CA clients only; use MUTUAL for certificates "
                                   "of your own)";
        if (s->server_certificate)
            dec_error(d, n, "ISTIO_MUTUAL TLS cannot have associated server certificate%s", hint);
        if (s->private_key)
            dec_error(d, n, "ISTIO_MUTUAL TLS cannot have associated private key%s", hint);
        if (s->ca_certificates)
            dec_error(d, n, "ISTIO_MUTUAL TLS cannot have associated CA bundle%s", hint);
        if (s->credential_name)
            dec_error(d, n, "ISTIO_MUTUAL TLS cannot have associated credentialName%s", hint);
        return;
    }
    if (!strcmp(mode, "PASSTHROUGH") || !strcmp(mode, "AUTO_PASSTHROUGH")) {
        if (files || s->credential_name)
            dec_warn(d, n, IST_SCHEMA, "%s mode does not use certificates, they will be ignored",
                     mode);
        return;
    }
    if (s->credential_name && s->server_certificate && s->private_key)
        dec_error(d, n,
                  "only one of credential_name, credential_names, server_certificate/private_key, "
                  "tls_certificates should be specified");
    if (s->credential_name)
        return; /* fetched from the Secret: nothing more is required */
    const char *prefix = !strcmp(mode, "SIMPLE") ? "SIMPLE TLS" : "MUTUAL TLS";
    if (strcmp(mode, "SIMPLE") != 0 && !s->ca_certificates)
        dec_error(d, n, "%s requires a client CA bundle", prefix);
    if (!s->server_certificate)
        dec_error(d, n, "%s requires a server certificate", prefix);
    if (!s->private_key)
        dec_error(d, n, "%s requires a private key", prefix);
}

static void decode_server(struct cfg_dec *d, const struct ynode *n, struct cfg_gateway_server *s)
{
    s->pos = dec_here(d, n);
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "port"))
            decode_port(d, v, s);
        else if (dec_is(k, "hosts"))
            dec_strs(d, v, k, &s->hosts);
        else if (dec_is(k, "tls"))
            decode_tls(d, v, s);
        else if (dec_is(k, "name"))
            dec_str(d, v, k, &s->name);
        else if (!dec_is(k, "bind") && !dec_is(k, "defaultEndpoint"))
            dec_unknown(d, k, v);
    }
    if (ynode_is_null(ymap_get(n, "port")))
        dec_error(d, n, "port is required");
    if (!s->hosts.n)
        dec_error(d, n, "server config must contain at least one host");
    for (size_t i = 0; i < s->hosts.n; i++) {
        const char *why = host_error(s->hosts.v[i]);
        if (why)
            dec_error(d, n, "hosts[%zu]: \"%.128s\" %s", i, s->hosts.v[i], why);
    }
    if (s->has_tls)
        check_tls(d, n, s);
    if (!s->protocol || !in_list(s->protocol, protocols, true))
        return;
    if (cfg_gateway_protocol_is_tls(s->protocol) && !s->has_tls) {
        dec_error(d, n, "server must have TLS settings for HTTPS/TLS protocols");
    } else if (!cfg_gateway_protocol_is_tls(s->protocol) && s->has_tls) {
        /* Only a redirect (PASSTHROUGH, the zero mode) on an HTTP port. */
        bool passthrough =
            !strcmp(s->tls_mode, "PASSTHROUGH") || !strcmp(s->tls_mode, "AUTO_PASSTHROUGH");
        if (!cfg_gateway_protocol_is_http(s->protocol))
            dec_error(d, n, "server cannot have TLS settings for non HTTPS/TLS ports");
        else if (!passthrough || s->ca_certificates || s->private_key || s->server_certificate)
            dec_error(d, n, "server cannot have TLS settings for plain text HTTP ports");
    }
}

void decode_gateway(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_gateway *g = out;
    const struct ynode *spec = ymap_get(doc, "spec");
    size_t m = dec_push(d, "spec");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, spec, &i, &k, &v);) {
        if (dec_is(k, "selector")) {
            g->selector.set = true;
            dec_labels(d, v, k, &g->selector.match);
        } else if (dec_is(k, "servers")) {
            DECODE_LIST(d, v, k, struct cfg_gateway_server, decode_server, g->servers, g->nservers);
        } else {
            dec_unknown(d, k, v);
        }
    }
    dec_pop(d, m);
    if (!g->nservers && !d->failed)
        dec_error(d, spec ? spec : doc, "spec.servers: a Gateway must have at least one server");
    /* Port names are unique (the webhook's error; istioctl analyze, whose
     * own test data repeats names, loads them: a warning keeps parity with
     * it); httpsRedirect belongs on HTTP servers. */
    for (size_t i = 0; i < g->nservers; i++) {
        const struct cfg_gateway_server *s = &g->servers[i];
        const struct ynode *at = spec ? spec : doc;
        for (size_t j = 0; s->port_name && j < i; j++)
            if (g->servers[j].port_name && strcmp(g->servers[j].port_name, s->port_name) == 0)
                dec_warn(d, at, IST_SCHEMA,
                         "port names in servers must be unique: duplicate name %.64s",
                         s->port_name);
        if (s->https_redirect && !cfg_gateway_protocol_is_http(s->protocol))
            dec_warn(d, at, IST_SCHEMA, "tls.httpsRedirect should only be used with http servers");
    }
}

/* ---- Secret PEM texts ---- */

/* Base64 (Kubernetes' data), whitespace ignored; NULL if not valid. */
static const char *unbase64(struct cfg_dec *d, const char *s)
{
    size_t len = strlen(s);
    char *clean = arena_alloc(d->arena, len + 1);
    char *out = arena_alloc(d->arena, len / 4 * 3 + 4);
    if (!clean || !out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)s[i]))
            clean[n++] = s[i];
    if (n % 4)
        return NULL;
    int got = n ? EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)clean, (int)n) : 0;
    if (got < 0)
        return NULL;
    /* EVP_DecodeBlock counts the padding as output bytes. */
    for (size_t i = n; i > 0 && clean[i - 1] == '=' && got > 0; i--)
        got--;
    out[got] = '\0';
    if (strlen(out) != (size_t)got)
        return NULL; /* a NUL inside: not PEM */
    return out;
}

void dec_secret_entry(struct cfg_dec *d, const char *section, const char *k, const struct ynode *v,
                      struct cfg_secret *s)
{
    const char **slot = NULL;
    if (dec_is(k, "tls.crt") || dec_is(k, "cert"))
        slot = &s->tls_crt;
    else if (dec_is(k, "tls.key") || dec_is(k, "key"))
        slot = &s->tls_key;
    else if (dec_is(k, "ca.crt") || dec_is(k, "cacert"))
        slot = &s->ca_crt;
    if (!slot)
        return;
    const char *text = NULL;
    if (!dec_str(d, v, k, &text) || !text)
        return;
    if (strcmp(section, "data") == 0 && !(text = unbase64(d, text))) {
        dec_error(d, v, "%s.%s: expected base64", section, k);
        return;
    }
    *slot = text;
}
