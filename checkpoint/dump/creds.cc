// Credentials not visible in /proc/PID/status: the securebits (prctl(2), PR_GET_SECUREBITS).
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "checkpoint/dump/collect.h"

namespace crbox::dump {

void collect_securebits(RemoteSession& rs, model::Process& p) {
  long r = rs.check("PR_GET_SECUREBITS", SYS_prctl, PR_GET_SECUREBITS);
  p.creds.securebits = static_cast<uint32_t>(r);
}

}  // namespace crbox::dump
