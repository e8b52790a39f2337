// Putting the datagrams queued in a socket back, each from its original sender's address
// (checkpoint/restore/sockets.cc calls these; the model is checkpoint/model/socket.h).
#pragma once

#include <cstdint>
#include <string>

#include "checkpoint/model/socket.h"

namespace crbox::restore {

// Sends the messages [first, end) of a unix datagram socket's queue (sk.queue, sk.queue_from) to
// `s`, which is bound to its name, in order: each from a socket bound to the name its sender had,
// or all from `via` when given (the restored sender itself). `what` starts error messages
// ("fd 5: ").
void refill_unix_dgram(int s, const model::Socket& sk, const std::string& what, size_t first = 0, size_t end = SIZE_MAX,
                       int via = -1);

// Puts the datagrams queued in a UDP socket back into `s` (bound, not yet connected), in order,
// each with its original source address and port, and returns once all of them are queued.
void refill_udp(int s, const model::Socket& sk, const std::string& what);

}  // namespace crbox::restore
