// Restarting an image taken in a crbox sandbox: a fresh sandbox with the same spec, the process
// recreated at its original pid inside, clocks continued through the time namespace.
#pragma once

#include <functional>

#include "checkpoint/image/bundle.h"
#include "checkpoint/restore/puppet.h"
#include "checkpoint/restore/restorer.h"

namespace crbox::restore {

int restart_sandboxed(const RestoreOptions& opt, const model::Image& img, image::BundleReader& reader,
                      int stop_signal, const std::function<void(const Restored&)>& on_restored);

// Waits for our child `pid`, forwarding the usual terminal and user signals to it; returns its exit
// status as a shell reports it (code, or 128 + signal).
int wait_forwarding_signals(pid_t pid);

}  // namespace crbox::restore
