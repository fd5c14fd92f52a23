/* worker/sse.h: GET /events as a pure module: turns the shared event ring
 * (shm/events.h) into Server-Sent Events text for each open stream, with its
 * own cursor, prefix filter, Last-Event-ID resume, resets and heartbeats,
 * and keeps the set of a worker's open streams under a cap. It owns no
 * socket, no timer and no h2o object, never blocks and never allocates:
 * the HTTP glue owns the streams' memory and does the sending.
 *
 * Wire format (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 *   retry: 1000                  once, first: the client's reconnect delay
 *   : ok                         once: the stream is open (headers are out)
 *   id: 1234-0                   Raft index - sequence within the entry
 *   event: acquired
 *   data: {"type":"acquired","index":1234,"seq":0,"name":"job-7",...}
 *                                (blank line ends an event)
 *   : heartbeat                  after heartbeat_ms without output
 *   event: reset                 the client must reload its state: it asked to
 *                                resume from an id the ring no longer holds, it
 *                                fell a whole ring behind, or the node's state
 *                                jumped (raftproc restarted, snapshot installed)
 *
 * Phase-2 wiring in h2o 2.2.5 (one event loop per worker, no threads):
 *  - Handler for GET /events: parse ?prefix= (a lock-name prefix, as in
 *    /locks) and Last-Event-ID (sse_parse_id: 400 if malformed); take a
 *    stream from the worker's hub (sse_hub_add: -LOCKD_EFULL at
 *    --max-event-streams, answer 503 + Retry-After); allocate the struct
 *    sse_stream from req->pool (it lives exactly as long as the request);
 *    sse_stream_open; set Content-Type: text/event-stream, Cache-Control:
 *    no-store, X-Accel-Buffering: no; h2o_start_response(req, &gen) where
 *    gen is embedded in the glue's per-stream struct with .proceed and .stop;
 *    then send what sse_stream_fill returns (the preamble) with
 *    h2o_send(req, &iov, 1, H2O_SEND_STATE_IN_PROGRESS) and mark the stream
 *    in flight (sse_stream_sending).
 *  - h2o keeps the iovec until it calls gen.proceed: the buffer must not
 *    change in between; that is the in-flight flag. proceed: sse_stream_sent,
 *    then fill again and send at once if there is more (so a fast reader
 *    drains a backlog at its own pace, not the timer's).
 *  - One per-worker timer (h2o_timeout_t of 20-50 ms, re-armed while the hub
 *    has streams) calls sse_hub_poll, whose send callback does the
 *    h2o_send for every stream that has output and is not in flight. The
 *    cost per tick is bounded per stream (SSE_READ_BUDGET slots read).
 *  - gen.stop (the client went away, or the worker shuts down): sse_hub_remove.
 *    On drain, stop taking streams and end each with H2O_SEND_STATE_FINAL
 *    when it is not in flight.
 *  - Slow readers never block anything: a stream whose previous chunk is
 *    still in flight (the client does not read, its socket buffer is full) is
 *    simply not filled; its cursor stays while the writer carries on; when
 *    the ring laps it the stream gets one `reset` and resumes at the head.
 *    Memory per stream is fixed (struct sse_stream, about 16 KiB). raftproc
 *    never knows how many readers there are. h2o's io_timeout closes a
 *    connection whose pending write makes no progress.
 *  - /metrics: the hub's open count per worker as a gauge
 *    (lockd_event_streams, summed over workers' stats slots), and the
 *    resets and events sent as counters (sse_hub totals).
 */
#ifndef LOCKD_WORKER_SSE_H
#define LOCKD_WORKER_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "shm/events.h"

#define SSE_BUF_CAP 16384          /* bytes one stream hands to h2o at a time */
#define SSE_EVENT_MAX 2048         /* the longest formatted event: 128-byte name and owner, every byte escaped */
#define SSE_READ_BUDGET 4096       /* ring slots one fill may read (filtered-out ones included) */
#define SSE_HEARTBEAT_MS 15000     /* default: a comment after this long without output */
#define SSE_DEFAULT_MAX_STREAMS 64 /* default --max-event-streams per worker */

/* An event id: Raft index and sequence within its entry. */
struct sse_id {
    uint64_t index;
    uint32_t seq; /* UINT32_MAX: after every event of index */
};

/* Parses a Last-Event-ID value: "INDEX-SEQ" or a bare "INDEX" (= every
 * event of that entry seen), decimal, no sign, surrounding spaces ignored.
 * Returns 0, or -LOCKD_EINVAL (malformed or out of range: answer 400). */
int sse_parse_id(const char *s, size_t len, struct sse_id *out);

/* Writes "INDEX-SEQ" (no NUL) into buf (>= 32 bytes); returns its length. */
size_t sse_format_id(uint64_t index, uint32_t seq, char *buf);

/* The event as SSE text (id, event, data lines and the blank line) into
 * buf[0..cap); returns the length, or 0 if it does not fit (it always fits
 * in SSE_EVENT_MAX). A reset marker is formatted as a reset with reason
 * "restart". */
size_t sse_format_event(const struct shm_event *ev, char *buf, size_t cap);

/* true if the event passes the prefix filter: lock events whose name starts
 * with prefix[0..len); leader_changed and reset always pass. */
bool sse_prefix_match(const char *prefix, size_t len, const struct shm_event *ev);

struct sse_hub;

/* One open stream. Owned by the HTTP glue (e.g. from req->pool); the
 * fields are the module's. */
struct sse_stream {
    struct shm_events_cursor cur;
    char prefix[LOCKD_NAME_MAX];
    size_t prefix_len;
    uint64_t last_output_ms; /* when the last chunk was filled: heartbeat clock */
    uint32_t heartbeat_ms;
    bool preamble_sent;
    bool in_flight;        /* h2o holds buf: do not touch until sse_stream_sent */
    const char *reset_why; /* a reset is owed to the client: "resume", "behind" */
    uint64_t events, resets;
    struct sse_hub *hub; /* while added */
    struct sse_stream *prev, *next;
    void *user; /* the glue's per-stream data (its h2o_req_t / generator) */
    size_t len;
    char buf[SSE_BUF_CAP];
};

/* Positions a stream: after last_id (NULL: from the next event appended),
 * passing only events whose names start with prefix[0..prefix_len) (0: all).
 * If the ring no longer holds what follows last_id, the stream's first
 * output is a reset ("resume") and it continues from the head.
 * Returns 0, or -LOCKD_EINVAL (prefix longer than a name). */
int sse_stream_open(struct sse_stream *s, const shm_events *ring, const struct sse_id *last_id, const char *prefix,
                    size_t prefix_len, uint64_t now_ms);

/* Fills s->buf with whatever is due now: the preamble, a reset owed, the
 * ring's new events that pass the filter (reading at most SSE_READ_BUDGET
 * slots and stopping when another event might not fit), or a heartbeat
 * when nothing was output for heartbeat_ms. Returns s->len (0: nothing to
 * send now). Must not be called while in flight (returns 0). */
size_t sse_stream_fill(struct sse_stream *s, const shm_events *ring, uint64_t now_ms);

/* The glue handed s->buf[0..s->len) to h2o / h2o released it (proceed). */
void sse_stream_sending(struct sse_stream *s);
void sse_stream_sent(struct sse_stream *s);

/* A worker's open streams, under a cap. Plain data, owned by the glue. */
struct sse_hub {
    struct sse_stream *first;
    size_t open, max;
    uint64_t opened_total, refused_total; /* counters for /metrics */
    uint64_t events_total, resets_total;  /* of streams since removed; add the live ones' */
};

void sse_hub_init(struct sse_hub *h, size_t max_streams);

/* Adds s; -LOCKD_EFULL (nothing changed) when max streams are open. */
int sse_hub_add(struct sse_hub *h, struct sse_stream *s);

/* Removes s (a no-op if it is not in a hub). */
void sse_hub_remove(struct sse_hub *h, struct sse_stream *s);

/* The timer's work: fills every stream that is not in flight and calls
 * send(s, arg) for each that has output (send must hand s->buf[0..s->len)
 * to h2o and call sse_stream_sending; it may remove s from the hub).
 * Returns the number of streams that had output. */
size_t sse_hub_poll(struct sse_hub *h, const shm_events *ring, uint64_t now_ms,
                    void (*send)(struct sse_stream *s, void *arg), void *arg);

#endif
