/* proto/frame.c: length-prefix framing (see frame.h). Owns nothing. */
#include "proto/frame.h"

#include "common/errors.h"
#include "common/limits.h"

int frame_encode(const ProtobufCMessage *msg, uint8_t *dst, size_t cap)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > LOCKD_FRAME_MAX || n + FRAME_HEADER_SIZE > cap)
        return -LOCKD_ETOOBIG;
    dst[0] = (uint8_t)n;
    dst[1] = (uint8_t)(n >> 8);
    dst[2] = (uint8_t)(n >> 16);
    dst[3] = (uint8_t)(n >> 24);
    protobuf_c_message_pack(msg, dst + FRAME_HEADER_SIZE);
    return (int)(n + FRAME_HEADER_SIZE);
}

int frame_peek(const uint8_t *buf, size_t len, const uint8_t **payload, size_t *payload_len)
{
    if (len < FRAME_HEADER_SIZE)
        return 0;
    uint32_t n = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
    if (n > LOCKD_FRAME_MAX)
        return -LOCKD_ETOOBIG;
    if (len - FRAME_HEADER_SIZE < n)
        return 0;
    *payload = buf + FRAME_HEADER_SIZE;
    *payload_len = n;
    return (int)(n + FRAME_HEADER_SIZE);
}
