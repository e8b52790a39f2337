// Where cr_run finds crbox's libcr_run.so.0 and libcr_omit.so.0, and the LD_PRELOAD value that
// gives them to the program it runs (BLCR's cr_run: runtime/libcr/, docs/libcr.md).
#pragma once

#include <optional>
#include <string>

namespace crbox::runtime {

// The directory holding the libcr libraries: $CRBOX_LIBCR_DIR when set; the installed libdir
// when the running tool is the installed one; the build tree's when it runs from the build tree;
// PREFIX/lib* next to PREFIX/bin for an install that was moved; "" when none has them.
std::string libcr_dir();

// `current` (an LD_PRELOAD value: paths separated by ':' or ' ') with `lib` appended. Entries
// that are libcr_run.so or libcr_omit.so already are dropped first, so there is one of them.
std::string preload_with(const std::string& current, const std::string& lib);

// The LD_PRELOAD value for a program cr_run starts: `current` with libcr_omit.so.0 (omit) or
// libcr_run.so.0 appended. nullopt when the library cannot be found, or, with a `rootfs`, is not
// visible at the same path inside it (the dynamic loader would complain at every exec): the
// program then runs without it.
std::optional<std::string> libcr_preload(bool omit, const std::string& current, const std::string& rootfs = "");

}  // namespace crbox::runtime
