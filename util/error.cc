#include "util/error.h"

#include <cstring>

namespace crbox {

Cause cause_of_errno(int err) {
  switch (err) {
    case ESRCH:
      return Cause::no_process;
    case EPERM:
    case EACCES:
      return Cause::permission;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return Cause::no_space;
    default:
      return Cause::unspecified;
  }
}

Cause Error::cause() const { return cause_ != Cause::unspecified ? cause_ : cause_of_errno(errno_); }

std::string errno_message(const std::string& what, int err) { return what + ": " + std::strerror(err); }

void throw_errno(const std::string& what, int err) { throw Error(errno_message(what, err), err); }

void throw_errno(const std::string& what) { throw_errno(what, errno); }

}  // namespace crbox
