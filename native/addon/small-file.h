// Reading a small kernel file (cgroup, /proc) whole, with the call that failed: what readFiles and
// makeCgroup both need.
#pragma once
#include <cstddef>
#include <string>

namespace berth {

// Reads path (at most max bytes) into *out: 0, or the errno with *failed naming the call ("open", "read").
int ReadSmallFile(const std::string &path, size_t max, std::string *out, const char **failed);

}  // namespace berth
