#include "util/error.h"

#include <cstring>

namespace crbox {

std::string errno_message(const std::string& what, int err) { return what + ": " + std::strerror(err); }

void throw_errno(const std::string& what, int err) { throw Error(errno_message(what, err), err); }

void throw_errno(const std::string& what) { throw_errno(what, errno); }

}  // namespace crbox
