// Reading and writing another process's memory: process_vm_readv(2)/process_vm_writev(2), which
// honour page protections, falling back to /proc/PID/mem, which does not (proc(5)).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace crbox {

void remote_read(pid_t pid, uint64_t addr, void* buf, size_t len);
void remote_write(pid_t pid, uint64_t addr, const void* buf, size_t len);
// Writes a NUL-terminated string; returns the number of bytes written (length + 1).
size_t remote_write_string(pid_t pid, uint64_t addr, const std::string& s);

}  // namespace crbox
