// The launcher's side of libcr's checkpoint requests from inside a sandbox
// (runtime/libcr/request_protocol.h): a thread that accepts on the socket the sandbox's init bound,
// runs the real cr_checkpoint from outside for each request, and reports its status back.
#pragma once

#include <sys/types.h>

#include <memory>

#include "util/fd.h"

namespace crbox::runtime {

// An unbound SOCK_SEQPACKET unix socket for the init to bind (and listen on) at
// CRBOX_LIBCR_SOCKET_PATH inside the sandbox. Throws crbox::Error.
UniqueFd make_request_socket();

// In the init, once the sandbox's mounts are in place: binds `fd` at CRBOX_LIBCR_SOCKET_PATH
// (reachable by any uid: 0666), listens, and closes it (the launcher keeps its copy). Failing
// is not fatal: self-checkpoint requests then fail as they would without a server.
void bind_request_socket(int fd) noexcept;

// Serves requests on `listener` (bound and listening; ignored when the init could not bind it)
// for the sandbox whose init has host pid `init`, in a thread of its own, so the launcher's
// signal forwarding and reaping go on. The caller keeps its signal mask (the thread inherits it:
// SIGCHLD and the forwarded signals stay blocked, so none is taken from the launcher). The
// destructor stops the thread and kills and reaps any cr_checkpoint still running.
class RequestServer {
 public:
  RequestServer(UniqueFd listener, pid_t init);
  ~RequestServer();
  RequestServer(const RequestServer&) = delete;
  RequestServer& operator=(const RequestServer&) = delete;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace crbox::runtime
