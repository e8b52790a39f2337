// A process-wide deadline for a whole operation (cr_checkpoint --time): loops that wait on the
// kernel check it instead of blocking forever. The same checks also stop the operation when the
// user interrupts it (cancel_on_signals), so it unwinds and releases what it holds instead of
// dying in the middle.
#pragma once

#include <chrono>
#include <string>

namespace crbox {

void set_deadline(std::chrono::milliseconds from_now);
bool deadline_passed();
// Throws crbox::Error("<what> did not finish within the time limit (--time)") once passed, or
// Error("interrupted by SIGINT (<what>); nothing was saved") once a signal cancel_on_signals()
// watches has come.
void check_deadline(const std::string& what);
// SIGINT, SIGTERM, SIGHUP and SIGQUIT no longer end the process: the next check_deadline() throws
// instead (system calls are restarted, SA_RESTART). The signal that came, 0 if none.
void cancel_on_signals();
int cancel_signal();

}  // namespace crbox
