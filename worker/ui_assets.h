/* worker/ui_assets.h: the web UI's files, compiled into the binary at build
 * time (ui/embed.py writes BUILD/ui/ui_assets_data.c from the files in ui/, see
 * ui/ui.mk), and the response headers they are served with. Read-only data:
 * nothing here allocates, reads a file or touches the network.
 *
 * Phase-2 wiring (worker router): GET/HEAD /ui/REST -> ui_asset_find(REST)
 * (REST "" is index.html); 404 JSON if NULL; If-None-Match equal to the
 * asset's etag -> 304 without a body; else 200 with Content-Type, ETag,
 * Cache-Control: no-cache (revalidate: names carry no hash) and the
 * UI_SECURITY_HEADERS below. GET / -> 302 Location: /ui/. --ui off: both
 * routes answer 404 as today. */
#ifndef LOCKD_WORKER_UI_ASSETS_H
#define LOCKD_WORKER_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *name;         /* base name under /ui/, e.g. "app.js" */
    const char *content_type; /* e.g. "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const char *etag; /* strong: "\"<first 128 bits of SHA-256, hex>\"" */
};

/* The generated table, sorted by name (bytewise). */
extern const struct ui_asset ui_assets[];
extern const size_t ui_assets_count;
extern const size_t ui_assets_total_bytes;

/* The asset for path[0..len) relative to /ui/ ("" and "index.html" are the
 * page), or NULL. Exact match only: no directories, no "..", no query. */
const struct ui_asset *ui_asset_find(const char *path, size_t len);

/* Content-Security-Policy of every UI response: scripts and styles only
 * from this origin (no inline script), fetch() only to this origin (the
 * glue appends the cluster members' origins when it allows the cluster view
 * to probe them), never framed. */
#define UI_CSP                                                                                                         \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "              \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* The other security headers, as {name, value} pairs. */
// clang-format off
#define UI_SECURITY_HEADERS                                 \
    {"X-Frame-Options", "DENY"},                            \
    {"X-Content-Type-Options", "nosniff"},                  \
    {"Referrer-Policy", "no-referrer"},                     \
    {"Cross-Origin-Opener-Policy", "same-origin"},          \
    {"Cross-Origin-Resource-Policy", "same-origin"}
// clang-format on

#endif
