// A process-wide deadline for a whole operation (cr_checkpoint --time): loops that wait on the
// kernel check it instead of blocking forever.
#pragma once

#include <chrono>
#include <string>

namespace crbox {

void set_deadline(std::chrono::milliseconds from_now);
bool deadline_passed();
// Throws crbox::Error("<what> did not finish within the time limit (--time)") once passed.
void check_deadline(const std::string& what);

}  // namespace crbox
