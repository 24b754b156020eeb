/* The labels memo (agent/telemetry/labels_memo.c): a hit is exactly what
 * computing the labels again gives. Over records that differ from a base
 * in one field each, a lookup after the base was kept either misses or
 * returns the mutated record's own labels; the fields labels are made of
 * always miss, the ports (no label reads them) always hit; another
 * snapshot version misses; slots are bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/addr.h"
#include "telemetry/labels_memo.h"
#include "telemetry/tcp_metrics.h"

static struct conn_record base_record(void)
{
    struct conn_record r = {.id = 7, .state = CONN_OPEN, .bytes_sent = 10};
    snprintf(r.direction, sizeof(r.direction), "outbound");
    snprintf(r.pod, sizeof(r.pod), "default/client-1");
    snprintf(r.peer_identity, sizeof(r.peer_identity), "spiffe://cluster.local/ns/default/sa/v1");
    snprintf(r.dst_service, sizeof(r.dst_service), "payments.default.svc.cluster.local");
    assert_int_equal(addr_parse("10.0.1.2:40000", &r.src), 0);
    assert_int_equal(addr_parse("10.0.2.2:8080", &r.upstream), 0);
    assert_int_equal(addr_parse("10.0.2.2:15008", &r.hbone), 0);
    return r;
}

struct mutation {
    const char *what;
    bool labelled; /* a field the labels are made of: must miss */
    void (*apply)(struct conn_record *r);
    bool shared; /* a field they are not made of that the memo ignores: must hit */
};

static void m_direction(struct conn_record *r)
{
    snprintf(r->direction, sizeof(r->direction), "inbound");
}
static void m_pod(struct conn_record *r)
{
    snprintf(r->pod, sizeof(r->pod), "default/client-2");
}
static void m_peer(struct conn_record *r)
{
    r->peer_identity[0] = '\0';
}
static void m_service(struct conn_record *r)
{
    snprintf(r->dst_service, sizeof(r->dst_service), "reviews.default.svc.cluster.local");
}
static void m_upstream(struct conn_record *r)
{
    addr_parse("10.0.2.3:8080", &r->upstream);
}
static void m_src(struct conn_record *r)
{
    addr_parse("10.0.1.3:40000", &r->src);
}
/* The labels read IPs only (workload_labels.c looks peers up by IP): a
 * keep-alive pool's connections differ in their source ports. */
static void m_src_port(struct conn_record *r)
{
    addr_parse("10.0.1.2:40001", &r->src);
}
static void m_upstream_port(struct conn_record *r)
{
    addr_parse("10.0.2.2:9090", &r->upstream);
}
static void m_hbone(struct conn_record *r)
{
    r->hbone.family = 0;
}
static void m_flag(struct conn_record *r)
{
    r->response_flag = RESP_FLAG_UF;
}
static void m_bytes(struct conn_record *r)
{
    r->bytes_sent = 99;
    r->bytes_received = 5;
}
static void m_state(struct conn_record *r)
{
    r->state = CONN_CLOSED;
    r->duration_ms = 3;
}
static void m_id(struct conn_record *r)
{
    r->id = 8;
}

static void hit_is_what_computing_gives(void **state)
{
    (void)state;
    static const struct mutation rows[] = {
        {"direction", true, m_direction, false},
        {"pod", true, m_pod, false},
        {"peer identity", true, m_peer, false},
        {"destination service", true, m_service, false},
        {"upstream endpoint", true, m_upstream, false},
        {"source address", true, m_src, false},
        {"source port", false, m_src_port, true},
        {"upstream port", false, m_upstream_port, true},
        {"mTLS or not", true, m_hbone, false},
        {"response flag", true, m_flag, false},
        {"byte counts", false, m_bytes, false},
        {"state", false, m_state, false},
        {"record id", false, m_id, false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct labels_memo *m;
        assert_int_equal(labels_memo_new(&m), 0);
        struct conn_record base = base_record(), mut = base;
        rows[i].apply(&mut);
        struct tcp_labels l, got, fresh;
        tcp_labels_from_record(&base, &l);
        labels_memo_put(m, "v1", &base, &l);
        assert_true(labels_memo_get(m, "v1", &base, &got));
        assert_memory_equal(&got, &l, sizeof(l));
        bool hit = labels_memo_get(m, "v1", &mut, &got);
        print_message("  %s: %s\n", rows[i].what, hit ? "hit" : "miss");
        if (rows[i].labelled)
            assert_false(hit);
        if (rows[i].shared)
            assert_true(hit);
        if (hit) {
            tcp_labels_from_record(&mut, &fresh);
            assert_memory_equal(&got, &fresh, sizeof(fresh));
        }
        assert_false(labels_memo_get(m, "v2", &base, &got)); /* another snapshot */
        uint64_t hits, misses;
        labels_memo_counts(m, &hits, &misses);
        assert_int_equal(hits, 1 + (hit ? 1 : 0));
        assert_int_equal(misses, 1 + (hit ? 0 : 1));
        labels_memo_free(m);
    }
}

/* connection_security_policy says what happened: mTLS over HBONE, the
 * same-node fast path (no TLS: "none" for both reporters, principals kept),
 * plaintext ("unknown" at the source, as Istio's source reporter says, and
 * "none" at the destination); a fast-path record never takes a plaintext
 * one's memoized labels. */
static void security_policy_says_what_happened(void **state)
{
    (void)state;
    static const struct {
        const char *direction;
        bool hbone, local;
        const char *want;
    } rows[] = {
        {"outbound", true, false, "mutual_tls"}, {"inbound", true, false, "mutual_tls"},
        {"outbound", false, true, "none"},       {"inbound", false, true, "none"},
        {"outbound", false, false, "unknown"},   {"inbound", false, false, "none"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct conn_record r = base_record();
        snprintf(r.direction, sizeof(r.direction), "%s", rows[i].direction);
        if (!rows[i].hbone)
            r.hbone.family = 0;
        r.local = rows[i].local;
        struct tcp_labels l;
        tcp_labels_from_record(&r, &l);
        print_message("  %s hbone=%d local=%d: %s\n", rows[i].direction, rows[i].hbone,
                      rows[i].local, l.v[TL_CONNECTION_SECURITY_POLICY]);
        assert_string_equal(l.v[TL_CONNECTION_SECURITY_POLICY], rows[i].want);
        /* The principal the record carries is labelled whatever the path. */
        assert_string_equal(
            l.v[strcmp(rows[i].direction, "outbound") == 0 ? TL_DESTINATION_PRINCIPAL
                                                           : TL_SOURCE_PRINCIPAL],
            "spiffe://cluster.local/ns/default/sa/v1");
    }
    struct labels_memo *m;
    assert_int_equal(labels_memo_new(&m), 0);
    struct conn_record plain = base_record(), fast;
    plain.hbone.family = 0;
    fast = plain;
    fast.local = true;
    struct tcp_labels l, got;
    tcp_labels_from_record(&plain, &l);
    labels_memo_put(m, "v1", &plain, &l);
    assert_false(labels_memo_get(m, "v1", &fast, &got));
    labels_memo_free(m);
}

/* More records than slots: each kept one answers until another takes its
 * slot; nothing is answered for a record that was never kept. */
static void bounded_by_its_slots(void **state)
{
    (void)state;
    struct labels_memo *m;
    assert_int_equal(labels_memo_new(&m), 0);
    struct tcp_labels l, got;
    size_t answered = 0;
    for (int i = 0; i < 4 * LABELS_MEMO_SLOTS; i++) {
        struct conn_record r = base_record();
        snprintf(r.pod, sizeof(r.pod), "default/client-%d", i);
        tcp_labels_from_record(&r, &l);
        assert_false(labels_memo_get(m, "v1", &r, &got));
        labels_memo_put(m, "v1", &r, &l);
        assert_true(labels_memo_get(m, "v1", &r, &got));
        assert_string_equal(got.v[TL_SOURCE_WORKLOAD], l.v[TL_SOURCE_WORKLOAD]);
    }
    for (int i = 0; i < 4 * LABELS_MEMO_SLOTS; i++) {
        struct conn_record r = base_record();
        snprintf(r.pod, sizeof(r.pod), "default/client-%d", i);
        if (labels_memo_get(m, "v1", &r, &got)) {
            answered++;
            char want[64];
            snprintf(want, sizeof(want), "client-%d", i);
            assert_string_equal(got.v[TL_SOURCE_WORKLOAD], want);
        }
    }
    assert_true(answered > 0);
    assert_true(answered <= LABELS_MEMO_SLOTS);
    labels_memo_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hit_is_what_computing_gives),
        cmocka_unit_test(bounded_by_its_slots),
        cmocka_unit_test(security_policy_says_what_happened),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
