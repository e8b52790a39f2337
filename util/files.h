// Small file helpers used across crbox: whole-file reads, full writes, atomic replacement.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

namespace crbox {

// Reads a whole file (works for /proc files, whose size is reported as 0). Throws Error.
std::string read_file(const std::string& path);
// Same, but returns nullopt when the file does not exist (ENOENT/ESRCH).
std::optional<std::string> try_read_file(const std::string& path);

// Writes all of buf, retrying on EINTR and short writes. Throws Error naming `what`.
void write_all(int fd, const void* buf, size_t len, const std::string& what);
// Reads exactly len bytes; returns false on EOF before the first byte, throws on a short read.
bool read_exact(int fd, void* buf, size_t len, const std::string& what);

// Writes `data` to `path` atomically: a temporary file in the same folder, fsync, rename.
void write_file_atomic(const std::string& path, const std::string& data, mode_t mode = 0644);

// A copy, in this process, of another process's descriptor `fd` (pidfd_getfd(2)): the same open
// file description, so reading a socket's queue with MSG_PEEK or a file's content through it
// leaves the owner's view unchanged (but a read(2) would move the shared offset). O_CLOEXEC.
// Needs ptrace access to `pid`. Throws Error.
int copy_remote_fd(pid_t pid, int fd);

// Creates a directory and its parents (like mkdir -p). Throws Error.
void make_dirs(const std::string& path, mode_t mode = 0755);

}  // namespace crbox
