// The uts namespace: the sandbox's hostname.
#pragma once

#include <string>

namespace crbox::ns {

// sethostname(2) in the caller's (new) uts namespace. Throws crbox::Error.
void set_hostname(const std::string& name);

}  // namespace crbox::ns
