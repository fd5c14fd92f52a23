/* lockctl/client.h: one admin command over the master's Unix socket
 * (proto/admin.proto): connect, send one AdminRequest frame, read
 * AdminResponse frames until the last one (more = false). Blocking, with
 * one deadline for the whole exchange; no state between calls. */
#ifndef LOCKD_LOCKCTL_CLIENT_H
#define LOCKD_LOCKCTL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/admin.pb-c.h"

/* Called once per response frame; resp is freed after fn returns (copy what
 * must outlive it). A non-zero return stops reading and is returned. */
typedef int (*client_frame_fn)(const Lockd__AdminResponse *resp, void *arg);

enum client_error {
    CLIENT_OK = 0,
    CLIENT_ECONNECT = -1, /* socket missing, refused, not permitted, path too long */
    CLIENT_EIO = -2,      /* the exchange failed: closed early, timeout, bad frame */
};

/* Runs one command against the socket at path. Returns CLIENT_OK, the
 * first non-zero value of fn, or a client_error with a one-line message in
 * err (for CLIENT_ECONNECT: "cannot connect to PATH: <strerror>"). */
int client_call(const char *path, const Lockd__AdminRequest *req, uint64_t timeout_ms, client_frame_fn fn, void *arg,
                char *err, size_t err_cap);

#endif
