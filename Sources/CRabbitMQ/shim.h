#ifndef STRATUS_CRABBITMQ_SHIM_H
#define STRATUS_CRABBITMQ_SHIM_H

/* rabbitmq-c 0.11 (Debian librabbitmq-dev): the headers are <amqp.h>, not <rabbitmq-c/amqp.h>. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>

/* Shift and cast macros do not import into Swift; these constants do. */
static const uint32_t STRATUS_AMQP_CORRELATION_ID_FLAG = AMQP_BASIC_CORRELATION_ID_FLAG;
static const uint32_t STRATUS_AMQP_REPLY_TO_FLAG = AMQP_BASIC_REPLY_TO_FLAG;
static const uint32_t STRATUS_AMQP_USER_ID_FLAG = AMQP_BASIC_USER_ID_FLAG;
static const uint32_t STRATUS_AMQP_DELIVERY_MODE_FLAG = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const amqp_method_number_t STRATUS_AMQP_CHANNEL_CLOSE_METHOD = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t STRATUS_AMQP_CONNECTION_CLOSE_METHOD = AMQP_CONNECTION_CLOSE_METHOD;

/* What went wrong in an RPC, as text: the library's error or the broker's close code and reason. */
static inline void stratus_amqp_describe(amqp_rpc_reply_t reply, char *buffer, size_t size) {
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(buffer, size, "ok");
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(buffer, size, "no reply (the connection is not open)");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buffer, size, "%s", amqp_error_string2(reply.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *close = (amqp_connection_close_t *)reply.reply.decoded;
            snprintf(buffer, size, "the broker closed the connection: %u %.*s", close->reply_code, (int)close->reply_text.len, (char *)close->reply_text.bytes);
        } else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *close = (amqp_channel_close_t *)reply.reply.decoded;
            snprintf(buffer, size, "the broker closed the channel: %u %.*s", close->reply_code, (int)close->reply_text.len, (char *)close->reply_text.bytes);
        } else {
            snprintf(buffer, size, "the broker answered with method 0x%08x", reply.reply.id);
        }
        break;
    }
}

/* amqp_login is variadic, which Swift cannot call: PLAIN login with a user and password. */
static inline amqp_rpc_reply_t stratus_amqp_login(amqp_connection_state_t state, const char *vhost, int heartbeat, const char *user, const char *password) {
    return amqp_login(state, vhost, 0, 131072, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

/* The string arguments below stay valid for the whole call (Swift's bridged C strings live
   only as long as the call they are passed to, so amqp_cstring_bytes is called here). */

static inline void stratus_amqp_declare_exchange(amqp_connection_state_t state, amqp_channel_t channel, const char *name, const char *type, int durable) {
    amqp_exchange_declare(state, channel, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0, durable, 0, 0, amqp_empty_table);
}

static inline void stratus_amqp_bind(amqp_connection_state_t state, amqp_channel_t channel, const char *queue, const char *exchange, const char *key) {
    amqp_queue_bind(state, channel, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), amqp_empty_table);
}

/* Purges a queue; returns how many messages it dropped, or -1 when the broker refused. */
static inline long stratus_amqp_purge(amqp_connection_state_t state, amqp_channel_t channel, const char *queue) {
    amqp_queue_purge_ok_t *ok = amqp_queue_purge(state, channel, amqp_cstring_bytes(queue));
    return ok ? (long)ok->message_count : -1;
}

static inline void stratus_amqp_consume(amqp_connection_state_t state, amqp_channel_t channel, const char *queue) {
    amqp_basic_consume(state, channel, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
}

/* Declares a queue; `quorum` asks for a quorum queue (x-queue-type), which must be durable. */
static inline amqp_queue_declare_ok_t *stratus_amqp_declare_queue(amqp_connection_state_t state, amqp_channel_t channel, const char *name,
                                                                   int durable, int exclusive, int auto_delete, int quorum) {
    amqp_table_entry_t entry;
    amqp_table_t arguments = amqp_empty_table;
    if (quorum) {
        entry.key = amqp_cstring_bytes("x-queue-type");
        entry.value.kind = AMQP_FIELD_KIND_UTF8;
        entry.value.value.bytes = amqp_cstring_bytes("quorum");
        arguments.num_entries = 1;
        arguments.entries = &entry;
    }
    return amqp_queue_declare(state, channel, amqp_cstring_bytes(name), 0, durable, exclusive, auto_delete, arguments);
}

/* Publishes one message (content type application/json); 0 or a negative amqp_status_enum.
   `user_id`, when set, must be the connection's user (RabbitMQ refuses the message otherwise),
   so a receiver can trust it; `expiration` (milliseconds as decimal text) drops the message
   from any queue it has waited in that long. */
static inline int stratus_amqp_publish(amqp_connection_state_t state, amqp_channel_t channel, const char *exchange, const char *key,
                                       const void *body, size_t length, const char *correlation_id, const char *reply_to,
                                       int persistent, int mandatory, const char *user_id, const char *expiration) {
    amqp_basic_properties_t properties;
    memset(&properties, 0, sizeof properties);
    properties._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    properties.content_type = amqp_cstring_bytes("application/json");
    properties.delivery_mode = persistent ? 2 : 1;
    if (correlation_id != NULL) {
        properties._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        properties.correlation_id = amqp_cstring_bytes(correlation_id);
    }
    if (reply_to != NULL) {
        properties._flags |= AMQP_BASIC_REPLY_TO_FLAG;
        properties.reply_to = amqp_cstring_bytes(reply_to);
    }
    if (user_id != NULL) {
        properties._flags |= AMQP_BASIC_USER_ID_FLAG;
        properties.user_id = amqp_cstring_bytes(user_id);
    }
    if (expiration != NULL) {
        properties._flags |= AMQP_BASIC_EXPIRATION_FLAG;
        properties.expiration = amqp_cstring_bytes(expiration);
    }
    amqp_bytes_t bytes = {length, (void *)body};
    return amqp_basic_publish(state, channel, amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), mandatory, 0, &properties, bytes);
}

/* Waits for the broker's confirm of the publish numbered `tag` on a channel in confirm mode.
   Returns 1 (ack), 0 (nack), 2 (acked but returned first: mandatory and unroutable), 3 on a
   timeout, 4 when the broker closed the channel or connection, else a negative amqp_status_enum. */
static inline int stratus_amqp_wait_confirm(amqp_connection_state_t state, uint64_t tag, int timeout_ms) {
    int returned = 0;
    for (;;) {
        amqp_frame_t frame;
        /* Each frame read is kept until released; nothing of the previous one is used any more. */
        amqp_maybe_release_buffers(state);
        struct timeval timeout = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        int status = amqp_simple_wait_frame_noblock(state, &frame, &timeout);
        if (status == AMQP_STATUS_TIMEOUT) return 3;
        if (status != AMQP_STATUS_OK) return status;
        if (frame.frame_type != AMQP_FRAME_METHOD) continue; /* a returned message's header and body */
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *ack = (amqp_basic_ack_t *)frame.payload.method.decoded;
            if (ack->delivery_tag == tag || (ack->multiple && ack->delivery_tag > tag)) return returned ? 2 : 1;
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *nack = (amqp_basic_nack_t *)frame.payload.method.decoded;
            if (nack->delivery_tag == tag || (nack->multiple && nack->delivery_tag > tag)) return 0;
            break;
        }
        case AMQP_BASIC_RETURN_METHOD:
            returned = 1;
            break;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            return 4;
        default:
            break;
        }
    }
}

#endif
