/* One request's retry, timeout and fault policy, and Envoy's local reply
 * texts (see request.h): what the route says, or Istio's defaults. */
#include "http/request.h"

#include <string.h>

#include <openssl/rand.h>

#include "config/model.h"
#include "core/str.h"

/* Istio's retry policy when a route names none: two retries on connect
 * failures, refused streams, gRPC unavailable/cancelled and 503. */
static const uint16_t default_codes[] = {503};
#define ISTIO_DEFAULT_RETRY_ON                                                                     \
    (CFG_RETRY_CONNECT_FAILURE | CFG_RETRY_REFUSED_STREAM | CFG_RETRY_UNAVAILABLE |                \
     CFG_RETRY_CANCELLED | CFG_RETRY_RETRIABLE_STATUS)

static uint32_t rand_ppm(void)
{
    uint32_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
        return 0;
    return v % 1000000u;
}

bool http_chance_ppm(uint32_t ppm)
{
    return ppm >= 1000000u || rand_ppm() < ppm;
}

uint64_t http_request_fault(struct http_request *r, int *abort_status)
{
    *abort_status = 0;
    const struct cfg_http_route *a = r->d.actions;
    if (!a)
        return 0;
    if (a->fault.abort_set && rand_ppm() < a->fault.abort_ppm) {
        *abort_status = a->fault.abort_status ? (int)a->fault.abort_status : 503;
        return 0;
    }
    if (a->fault.delay_set && rand_ppm() < a->fault.delay_ppm) {
        r->flag = RESP_FLAG_DI;
        return a->fault.delay_ns;
    }
    return 0;
}

/* The route's retry policy, or Istio's default; none at the destination
 * (the source already retried: a second round would replace the app's
 * own response, 503 by default, with a local one). */
static void retry_policy(const struct http_request *r, uint32_t *attempts, uint32_t *on,
                         const uint16_t **codes, size_t *ncodes, uint64_t *per_try)
{
    const struct cfg_http_route *a = r->d.actions;
    if (r->at_destination) {
        *attempts = *on = 0;
        *codes = default_codes;
        *ncodes = 0;
        *per_try = 0;
        return;
    }
    if (a && a->retries.set) {
        *attempts = a->retries.attempts;
        *on = a->retries.retry_on ? a->retries.retry_on : ISTIO_DEFAULT_RETRY_ON;
        *codes = a->retries.ncodes ? a->retries.retriable_codes : default_codes;
        *ncodes = a->retries.ncodes ? a->retries.ncodes : 1;
        *per_try = a->retries.per_try_timeout_ns;
        return;
    }
    *attempts = 2;
    *on = ISTIO_DEFAULT_RETRY_ON;
    *codes = default_codes;
    *ncodes = 1;
    *per_try = 0;
}

void http_request_start_try(struct http_request *r, uint64_t now)
{
    uint32_t attempts, on;
    const uint16_t *codes;
    size_t ncodes;
    uint64_t per_try;
    retry_policy(r, &attempts, &on, &codes, &ncodes, &per_try);
    if (r->attempt == 0 && !r->at_destination && r->d.actions && r->d.actions->timeout_ns)
        r->deadline_ns = r->start_ns + r->d.actions->timeout_ns;
    r->try_deadline_ns = per_try ? now + per_try : 0;
    char buf[ADDR_STRLEN];
    str_copy(r->upstream_host, sizeof(r->upstream_host),
             addr_format(r->d.route.target.family ? &r->d.route.target : &r->orig_dst, buf,
                         sizeof(buf)));
}

/* --- retries and deadlines ---------------------------------------------- */

static bool retry_condition(uint32_t on, const uint16_t *codes, size_t ncodes,
                            enum http_failure why, int status)
{
    uint32_t any_fail = CFG_RETRY_5XX | CFG_RETRY_GATEWAY_ERROR | CFG_RETRY_RESET;
    switch (why) {
    case HTTP_FAIL_CONNECT:
        return on & (any_fail | CFG_RETRY_CONNECT_FAILURE);
    case HTTP_FAIL_RESET:
    case HTTP_FAIL_TIMEOUT:
        return on & any_fail;
    case HTTP_FAIL_STATUS:
        break;
    }
    if ((on & CFG_RETRY_5XX) && status >= 500)
        return true;
    if ((on & CFG_RETRY_GATEWAY_ERROR) && status >= 502 && status <= 504)
        return true;
    if ((on & CFG_RETRY_RETRIABLE_4XX) && status == 409)
        return true;
    if (on & CFG_RETRY_RETRIABLE_STATUS)
        for (size_t i = 0; i < ncodes; i++)
            if (codes[i] == status)
                return true;
    return false;
}

bool http_request_may_retry(struct http_request *r, enum http_failure why, int status, uint64_t now)
{
    uint32_t attempts, on;
    const uint16_t *codes;
    size_t ncodes;
    uint64_t per_try;
    retry_policy(r, &attempts, &on, &codes, &ncodes, &per_try);
    if (r->attempt >= attempts || r->body_overflow || r->resp_head_sent || r->upgrade)
        return false;
    if (r->deadline_ns && now >= r->deadline_ns)
        return false;
    if (!r->req_complete && r->req_framing != HTTP_FRAME_NONE)
        return false; /* the rest of the body is still coming: not replayable */
    if (!retry_condition(on, codes, ncodes, why, status))
        return false;
    r->attempt++;
    return true;
}

bool http_request_retry_on_status(struct http_request *r, int status, uint64_t now)
{
    if (status < 400)
        return false;
    uint32_t attempts, on;
    const uint16_t *codes;
    size_t ncodes;
    uint64_t per_try;
    retry_policy(r, &attempts, &on, &codes, &ncodes, &per_try);
    if (!retry_condition(on, codes, ncodes, HTTP_FAIL_STATUS, status))
        return false;
    if (r->attempt >= attempts) {
        if (attempts && r->flag == RESP_FLAG_NONE)
            r->flag = RESP_FLAG_URX; /* Envoy's: retriable, but no retry left */
        return false;
    }
    if (r->body_overflow || r->upgrade || (r->deadline_ns && now >= r->deadline_ns) ||
        (!r->req_complete && r->req_framing != HTTP_FRAME_NONE))
        return false;
    return true; /* may_retry counts the attempt */
}

bool http_request_deadline(struct http_request *r, uint64_t now, enum http_failure *why)
{
    *why = HTTP_FAIL_TIMEOUT;
    if (r->deadline_ns && now >= r->deadline_ns)
        return true;
    return !r->resp_head_sent && r->try_deadline_ns && now >= r->try_deadline_ns;
}

/* --- local replies ------------------------------------------------------ */

const char *http_failure_reply(enum http_failure why, int *status, enum resp_flag *flag)
{
    switch (why) {
    case HTTP_FAIL_TIMEOUT:
        *status = 504;
        *flag = RESP_FLAG_UT;
        return "upstream request timeout";
    case HTTP_FAIL_CONNECT:
        *status = 503;
        *flag = RESP_FLAG_UF;
        return "upstream connect error or disconnect/reset before headers. reset reason: "
               "connection failure";
    case HTTP_FAIL_RESET:
    case HTTP_FAIL_STATUS:
        break;
    }
    *status = 503;
    *flag = RESP_FLAG_UC;
    return "upstream connect error or disconnect/reset before headers. reset reason: "
           "connection termination";
}

const char *http_refusal_reply(enum resp_flag flag, int *status)
{
    switch (flag) {
    case RESP_FLAG_UO:
        *status = 503;
        return "upstream connect error or disconnect/reset before headers. reset reason: "
               "overflow";
    case RESP_FLAG_UH:
        *status = 503;
        return "no healthy upstream";
    case RESP_FLAG_DENY:
        *status = 403;
        return "RBAC: access denied";
    case RESP_FLAG_NR:
        *status = 404;
        return "";
    default:
        *status = 503;
        return "upstream connect error";
    }
}

bool http_request_failed(struct http_request *r, struct http_proxy_stats *st, enum http_failure why,
                         int status, struct http_reply *reply)
{
    r->last_failure = why;
    r->last_status = status;
    if (http_request_may_retry(r, why, status, loop_now_ns())) {
        st->retries++;
        r->retried = true;
        return true;
    }
    if (why == HTTP_FAIL_TIMEOUT)
        st->timeouts++;
    reply->body = http_failure_reply(why, &reply->status, &reply->flag);
    reply->body_len = strlen(reply->body);
    reply->location = NULL;
    return false;
}
