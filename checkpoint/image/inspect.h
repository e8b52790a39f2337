// cr_inspect's work: read a whole bundle, verify it, and describe it as JSON (docs/cli/cr_inspect.md).
#pragma once

#include <ostream>
#include <string>

namespace crbox::image {

struct InspectOptions {
  bool pages = true;     // per-pid page statistics and per-VMA stored page counts
  bool summary = false;  // one line of facts per process instead of every field
};

// Reads the bundle from `fd` to its END section (every checksum checked), then writes the JSON to
// `out`. Throws crbox::Error, naming `name`, for an invalid bundle; nothing is written then.
void inspect_bundle(int fd, const std::string& name, const InspectOptions& opt, std::ostream& out);

}  // namespace crbox::image
