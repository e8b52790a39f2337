// cr_inspect [--no-pages] [--summary] FILE|-
// Reads a bundle, verifies every checksum and prints it as JSON (docs/cli/cr_inspect.md).
// Exit status: 0 valid, 1 invalid or unreadable (one sentence on stderr), 2 usage error.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <sstream>

#include "checkpoint/image/inspect.h"
#include "util/error.h"
#include "util/fd.h"

int main(int argc, char** argv) {
  CLI::App app{"Verify a crbox bundle and print it as JSON.", "cr_inspect"};
  std::string file;
  crbox::image::InspectOptions opt;
  bool no_pages = false;
  app.add_option("FILE", file, "the bundle, or - for standard input")->required();
  app.add_flag("--no-pages", no_pages, "leave page statistics out (page data is still read and verified)");
  app.add_flag("--summary", opt.summary, "one entry per process instead of every field");
  app.set_version_flag("--version", std::string("cr_inspect (crbox) ") + CRBOX_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "cr_inspect: " << e.what() << "\nTry 'cr_inspect --help' for more information.\n";
    return 2;
  }
  opt.pages = !no_pages;

  crbox::UniqueFd owned;
  int fd = STDIN_FILENO;
  std::string name = "standard input";
  if (file != "-") {
    name = file;
    owned.reset(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!owned) {
      std::cerr << "cr_inspect: cannot open " << file << ": " << std::strerror(errno) << ".\n";
      return 1;
    }
    struct stat st;
    if (::fstat(owned.get(), &st) == 0 && S_ISDIR(st.st_mode)) {
      std::cerr << "cr_inspect: " << file << " is a directory, not a crbox bundle.\n";
      return 1;
    }
    fd = owned.get();
  }
  try {
    std::ostringstream json;
    crbox::image::inspect_bundle(fd, name, opt, json);
    std::cout << json.str() << std::flush;
    if (!std::cout) {
      std::cerr << "cr_inspect: cannot write to standard output.\n";
      return 1;
    }
  } catch (const crbox::Error& e) {
    std::cerr << "cr_inspect: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "cr_inspect: " << name << " could not be inspected: " << e.what() << ".\n";
    return 1;
  }
  return 0;
}
