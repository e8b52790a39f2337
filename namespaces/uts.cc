#include "namespaces/uts.h"

#include <unistd.h>

#include "util/error.h"

namespace crbox::ns {

void set_hostname(const std::string& name) {
  if (::sethostname(name.data(), name.size()) != 0) throw_errno("cannot set the hostname to '" + name + "'");
}

}  // namespace crbox::ns
