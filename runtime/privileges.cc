#include "runtime/privileges.h"

#include <unistd.h>

#include "util/error.h"

namespace crbox::runtime {

void require_sandbox_privileges() {
  if (::geteuid() != 0) throw Error("--sandbox needs root privileges (crbox does not use user namespaces yet).");
}

}  // namespace crbox::runtime
