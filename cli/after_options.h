// BLCR's "what happens to the process afterwards" options, shared by cr_checkpoint and cr_restart:
// --run/--cont (default), --stop, --term, --abort, --kill, -S/--signal N. The engines take the
// result as one signal number (0: just let it run).
#pragma once

#include <signal.h>

#include <CLI/CLI.hpp>

namespace crbox::cli {

struct AfterOptions {
  bool run = false, stop = false, term = false, abort = false, kill = false;
  int signal = 0;

  // The signal to send as the process is let go, or 0.
  int signal_number() const {
    if (stop) return SIGSTOP;
    if (term) return SIGTERM;
    if (abort) return SIGABRT;
    if (kill) return SIGKILL;
    return signal;
  }
};

// Adds the options as a group in which at most one may be given.
inline void add_after_options(CLI::App& app, AfterOptions& a, const std::string& what) {
  auto* g = app.add_option_group("after", "what the process does " + what);
  g->add_flag("--run,--cont", a.run, "run (default)");
  g->add_flag("--stop", a.stop, "stop it (SIGSTOP)");
  g->add_flag("--term", a.term, "send it SIGTERM");
  g->add_flag("--abort", a.abort, "send it SIGABRT");
  g->add_flag("--kill", a.kill, "kill it (SIGKILL)");
  g->add_option("-S,--signal", a.signal, "send it signal N")->check(CLI::Range(1, 64));
  g->require_option(0, 1);
}

}  // namespace crbox::cli
