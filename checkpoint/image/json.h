// A small streaming JSON writer for cr_inspect: objects, arrays, strings (escaped per RFC 8259),
// integers and booleans, pretty-printed with two-space indentation.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace crbox::image {

// `s` as a JSON string literal, quotes included. '"', '\\' and control characters are escaped;
// valid UTF-8 passes through; a byte that is not part of valid UTF-8 becomes U+FFFD, since JSON
// text must be Unicode (paths on Linux are arbitrary bytes).
std::string json_quote(std::string_view s);

class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& os) : os_(os) {}
  ~JsonWriter() = default;

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }
  // The key of the next member of the current object.
  void key(std::string_view k);

  void value(std::string_view s) { scalar(json_quote(s)); }
  void value(const char* s) { value(std::string_view(s)); }
  void value(const std::string& s) { value(std::string_view(s)); }
  template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
  void value(T v) {
    if constexpr (std::is_same_v<T, bool>)
      scalar(v ? "true" : "false");
    else
      scalar(std::to_string(v));
  }
  void null() { scalar("null"); }

  // key + value in one call.
  template <class T>
  void field(std::string_view k, const T& v) {
    key(k);
    value(v);
  }

 private:
  void open(char c);
  void close(char c);
  void scalar(const std::string& text);
  void before_value();
  void newline();
  std::ostream& os_;
  std::vector<bool> empty_;  // per open container: nothing written in it yet
  bool after_key_ = false;
};

}  // namespace crbox::image
