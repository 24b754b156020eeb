/* ISTIO_MUTUAL at the edge (gateway/edge_tls.c): the server presents the
 * gateway pod's workload certificate from the mesh's context, a client
 * without a certificate or with another CA's fails the handshake, one of
 * the mesh CA is then verified by the mesh's check (here pki_verify_peer,
 * which the HBONE server's runs) and its SPIFFE id kept; a verification
 * that refuses it refuses the client; no mesh, or no certificate yet:
 * the server is left out and its port fails closed; a renewed workload
 * certificate makes the set stale. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "config/config.h"
#include "gateway/edge_tls.h"
#include "route/gateway_route.h"
#include "support/config_fixture.h"
#include "support/pki_fixture.h"

#define TD "cluster.local"

static const char config[] =
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: gw\n  namespace: istio-system\n"
    "  labels: {istio: ingressgateway}\nspec: {nodeName: n1}\nstatus: {podIP: 10.1.0.9}\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: Gateway\n"
    "metadata: {name: mesh, namespace: istio-system}\nspec:\n"
    "  selector: {istio: ingressgateway}\n  servers:\n"
    "  - port: {number: 9443, name: https-mesh, protocol: HTTPS}\n"
    "    tls: {mode: ISTIO_MUTUAL}\n    hosts: [mesh.example.com]\n";

/* The fake mesh: the gateway's certificate now, and the verification. */
static struct pki_cert *gw_cert;
static int verify_calls;
static const char *verify_td = TD;

static SSL_CTX *server_ctx(void *ctx, const struct pod *pod)
{
    return gw_cert ? pki_tls_ctx(pkif.ca_a, gw_cert, true) : NULL;
}

static int verify(void *ctx, SSL *ssl, char *id, size_t idlen, char *why, size_t whylen)
{
    verify_calls++;
    return pki_verify_peer(ssl, verify_td, NULL, id, idlen, why, whylen);
}

static const struct edge_tls_mesh mesh = {.server_ctx = server_ctx, .verify = verify};

static struct edge_tls *build(struct cfg_fixture *f, const struct edge_tls_mesh *m)
{
    cfg_fixture_load(f, config);
    struct gw_server gs[8];
    size_t n = gw_pod_servers(f->snap, cfg_find(f->snap, CFG_POD, "istio-system", "gw"), gs, 8);
    assert_int_equal(n, 1);
    assert_int_equal(gs[0].listen_port, 9443);
    struct edge_tls *set;
    assert_int_equal(edge_tls_build_mesh(f->snap, "istio-system", gs, n, m, &set), 0);
    return set;
}

struct outcome {
    bool handshake; /* both ends finished */
    int check;      /* edge_tls_check_peer */
    char peer_id[256], server_san[256];
};

/* A client (certificate `client`, or none) handshakes with the set over
 * a TCP pair, then the server side checks it. */
static struct outcome connect_as(struct edge_tls *set, const struct pkif_peer *client)
{
    struct outcome o = {0};
    SSL_CTX *cctx = client ? client->ctx : SSL_CTX_new(TLS_client_method());
    SSL *c, *s;
    pkif_tls_pair(cctx, edge_tls_first_ctx(set, 9443), &c, &s);
    assert_int_equal(edge_tls_attach(set, s, 9443), 0);
    SSL_set_tlsext_host_name(c, "mesh.example.com");
    o.handshake = pkif_drive_handshake(&c, &s) == 0;
    if (o.handshake) {
        char why[160] = "";
        o.check = edge_tls_check_peer(s, why, sizeof(why));
        snprintf(o.peer_id, sizeof(o.peer_id), "%s", edge_tls_peer_id(s));
        X509 *leaf = SSL_get1_peer_certificate(c);
        if (leaf)
            pki_cert_spiffe_id(leaf, o.server_san, sizeof(o.server_san));
        X509_free(leaf);
    }
    pkif_close_pair(c, s);
    if (!client)
        SSL_CTX_free(cctx);
    return o;
}

static void test_mesh_clients_are_verified_by_the_mesh(void **state)
{
    struct pkif_peer gw = pkif_peer(pkif.ca_a, pkif.ca_a, TD, "gw", 0, 3600, true);
    gw_cert = gw.cert;
    struct cfg_fixture f;
    struct edge_tls *set = build(&f, &mesh);
    assert_int_equal(edge_tls_count(set), 1);
    assert_true(edge_tls_select(set, 9443, "mesh.example.com")->istio_mutual);

    struct pkif_peer ok = pkif_peer(pkif.ca_a, pkif.ca_a, TD, "client", 0, 3600, false);
    struct pkif_peer foreign = pkif_peer(pkif.ca_b, pkif.ca_a, TD, "client", 0, 3600, false);
    struct pkif_peer other_td =
        pkif_peer(pkif.ca_a, pkif.ca_a, "other.local", "client", 0, 3600, false);
    verify_calls = 0;
    struct outcome o = connect_as(set, &ok);
    assert_true(o.handshake);
    assert_int_equal(o.check, 0);
    assert_int_equal(verify_calls, 1);
    assert_string_equal(o.peer_id, "spiffe://" TD "/ns/default/sa/client");
    assert_string_equal(o.server_san, "spiffe://" TD "/ns/default/sa/gw"); /* the workload's */

    o = connect_as(set, NULL); /* no client certificate */
    assert_false(o.handshake);
    o = connect_as(set, &foreign); /* another CA, the same id */
    assert_false(o.handshake);
    verify_calls = 0;
    o = connect_as(set, &other_td); /* the chain holds; the mesh's check refuses */
    assert_true(o.handshake);
    assert_int_equal(o.check, -EPERM);
    assert_int_equal(verify_calls, 1);
    assert_string_equal(o.peer_id, "");

    pkif_peer_free(&ok);
    pkif_peer_free(&foreign);
    pkif_peer_free(&other_td);
    edge_tls_unref(set);
    cfg_fixture_free(&f);
    gw_cert = NULL;
    pkif_peer_free(&gw);
}

static void test_without_mesh_or_certificate_the_port_fails_closed(void **state)
{
    struct cfg_fixture f;
    struct edge_tls *set = build(&f, NULL); /* no mesh */
    assert_int_equal(edge_tls_count(set), 0);
    assert_null(edge_tls_first_ctx(set, 9443));
    edge_tls_unref(set);
    cfg_fixture_free(&f);

    gw_cert = NULL; /* the pod has no certificate yet */
    set = build(&f, &mesh);
    assert_int_equal(edge_tls_count(set), 0);
    assert_null(edge_tls_first_ctx(set, 9443));
    edge_tls_unref(set);
    cfg_fixture_free(&f);
}

static void test_a_renewed_certificate_makes_the_set_stale(void **state)
{
    struct pkif_peer first = pkif_peer(pkif.ca_a, pkif.ca_a, TD, "gw", 0, 3600, true);
    struct pkif_peer renewed = pkif_peer(pkif.ca_a, pkif.ca_a, TD, "gw", 0, 3600, true);
    struct cfg_fixture f;
    gw_cert = NULL;
    struct edge_tls *set = build(&f, &mesh);
    assert_false(edge_tls_mesh_stale(set, NULL));            /* still none */
    assert_true(edge_tls_mesh_stale(set, first.cert->leaf)); /* one came */
    edge_tls_unref(set);
    cfg_fixture_free(&f);
    gw_cert = first.cert;
    set = build(&f, &mesh);
    assert_false(edge_tls_mesh_stale(set, first.cert->leaf));
    assert_true(edge_tls_mesh_stale(set, renewed.cert->leaf));
    assert_false(edge_tls_mesh_stale(NULL, renewed.cert->leaf));
    edge_tls_unref(set);
    cfg_fixture_free(&f);
    gw_cert = NULL;
    pkif_peer_free(&first);
    pkif_peer_free(&renewed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mesh_clients_are_verified_by_the_mesh),
        cmocka_unit_test(test_without_mesh_or_certificate_the_port_fails_closed),
        cmocka_unit_test(test_a_renewed_certificate_makes_the_set_stale),
    };
    return cmocka_run_group_tests(tests, pkif_setup, pkif_teardown);
}
