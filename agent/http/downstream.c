/* The downstream of an HTTP session at the destination when it arrives
 * over HBONE: the stream's end is the session itself (hbone_pipe, see
 * hbone/session.h), so requests are parsed where the tunnel's DATA
 * arrives and responses are queued into the stream, with no socket pair
 * and no system call in between. What the session cannot take yet (a
 * request in flight, its output past the mark) stays in the stream,
 * within its flow-control window, until hs_update_events() finds room and
 * resumes it. A clean end closes the stream in order (END_STREAM); a
 * failure resets it; a peer's reset ends the session. */
#include <errno.h>
#include <string.h>

#include "core/loop.h"
#include "hbone/session.h"
#include "http/session.h"

int hs_down_flush(struct hs *s)
{
    size_t before = hbuf_pending(&s->out);
    int rc = 0;
    if (s->down_st)
        hbuf_send_stream(&s->out, s->down_st);
    else
        rc = hbuf_flush(&s->out, s->io.fd);
    if (hbuf_pending(&s->out) < before)
        s->progress_ns = loop_woke_ns(s->hp->loop); /* for the stream idle timeout */
    return rc;
}

static size_t pipe_data(void *ctx, const char *p, size_t n)
{
    struct hs *s = ctx;
    if (s->ended)
        return n;
    if (!hs_wants_read(s)) {
        s->down_kept = true; /* resumed by hs_update_events once it can */
        return 0;
    }
    size_t k = n < sizeof(s->in) ? n : sizeof(s->in);
    memcpy(s->in, p, k);
    s->in_off = 0;
    s->in_len = k;
    s->down_in += k;
    s->last_activity_ns = s->progress_ns = loop_woke_ns(s->hp->loop);
    if (k < n)
        s->down_kept = true;
    if (hs_take_h2(s))
        return k; /* the stream's end is a socket now: the rest goes there */
    hs_drive_down(s);
    if (!s->ended)
        hs_update_events(s);
    return k;
}

static void pipe_eof(void *ctx)
{
    struct hs *s = ctx;
    if (!s->ended)
        hs_down_eof(s);
}

static void pipe_writable(void *ctx)
{
    struct hs *s = ctx;
    if (!s->ended)
        hs_update_events(s);
}

static void pipe_end(void *ctx, int err)
{
    struct hs *s = ctx;
    s->down_st = NULL; /* gone: nothing of it is ours any more */
    if (s->ended)
        return;
    hs_free_attempt(s, false);
    hs_end(s, err, RESP_FLAG_DC);
}

int hs_down_accept(struct hs *s, struct hbone_stream *st)
{
    static const struct hbone_pipe ops = {
        .on_data = pipe_data, .on_eof = pipe_eof, .on_writable = pipe_writable, .on_end = pipe_end};
    struct hbone_pipe p = ops;
    p.ctx = s;
    s->down_st = st;
    s->io.fd = -1;
    int rc = hbone_stream_accept_pipe(st, &p);
    if (rc)
        s->down_st = NULL;
    return rc;
}

void hs_down_settle(struct hs *s)
{
    if (s->state == HS_CLOSING && !hbuf_pending(&s->out)) {
        hs_linger(s); /* over a stream: ends it in order */
        return;
    }
    if (s->down_kept && hs_wants_read(s)) {
        s->down_kept = false;
        hbone_stream_resume(s->down_st);
    }
}

void hs_down_close(struct hs *s, int err)
{
    struct hbone_stream *st = s->down_st;
    s->down_st = NULL;
    if (!st)
        return;
    if (err)
        hbone_stream_abort(st, err);
    else
        hbone_stream_close(st);
}
