/* proto/frame.h: the one framing rule for every lockd stream (worker <->
 * raftproc, lockctl <-> master, peer forwarding): a 4-byte little-endian
 * payload length, then one packed protobuf-c message. Frames over
 * LOCKD_FRAME_MAX are refused on both sides. */
#ifndef LOCKD_PROTO_FRAME_H
#define LOCKD_PROTO_FRAME_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_SIZE 4

/* Packs msg as one frame into dst[0..cap). Returns the frame length
 * (header + payload), or -LOCKD_ETOOBIG if it exceeds cap or
 * LOCKD_FRAME_MAX. Never allocates. */
int frame_encode(const ProtobufCMessage *msg, uint8_t *dst, size_t cap);

/* Looks at the start of buf[0..len). Returns:
 *   > 0  a whole frame is there: its total length; *payload and *payload_len
 *        point at the message bytes inside buf;
 *   0    need more bytes;
 *   -LOCKD_ETOOBIG  the announced length is over LOCKD_FRAME_MAX (the
 *        stream is unusable: close it). */
int frame_peek(const uint8_t *buf, size_t len, const uint8_t **payload, size_t *payload_len);

#endif
