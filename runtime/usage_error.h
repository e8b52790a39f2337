// A bad option value: the tools print it and exit with status 2 before starting anything.
#pragma once

#include "util/error.h"

namespace crbox::runtime {

class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace crbox::runtime
