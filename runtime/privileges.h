// The one place that decides whether crbox has the privileges it needs. Everything needs root
// today; rootless operation (user namespaces) would change only this file's callers' checks.
#pragma once

namespace crbox::runtime {

// Throws crbox::Error with one sentence when the caller cannot create a sandbox.
void require_sandbox_privileges();

}  // namespace crbox::runtime
