// cr_run: run a program, plainly or in a crbox sandbox. Parsing and messages only; the work is in
// runtime/ (options.h validates, launcher.h runs).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "runtime/exec.h"
#include "runtime/launcher.h"
#include "runtime/libcr_preload.h"
#include "runtime/options.h"
#include "runtime/registry.h"
#include "runtime/usage_error.h"

namespace {

constexpr int kUsage = 2;     // bad command line or option value; nothing started
constexpr int kFailure = 125; // crbox itself failed (as env(1) and timeout(1) report it)

int fail(const std::string& msg, int status) {
  std::fprintf(stderr, "cr_run: %s\n", msg.c_str());
  return status;
}

int list_sandboxes() {
  auto all = crbox::runtime::list_sandboxes();
  std::printf("%-20s %8s %8s  %s\n", "ID", "INIT", "APP", "PROGRAM");
  for (const auto& r : all) {
    std::string cmd;
    for (const auto& a : r.spec.argv) cmd += (cmd.empty() ? "" : " ") + a;
    std::printf("%-20s %8d %8d  %s\n", r.id.c_str(), r.init_pid, r.app_pid, cmd.c_str());
  }
  return 0;
}

// A repeatable option taking exactly one value each time, so that a following PROGRAM is never
// taken for a second value (CLI11's vector options are greedy).
CLI::Option* repeatable(CLI::App& app, const std::string& name, std::vector<std::string>& into, const std::string& help) {
  return app.add_option(name, help)
      ->each([&into](const std::string& v) { into.push_back(v); })
      ->type_size(1)
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

}  // namespace

int main(int argc, char** argv) {
  using crbox::runtime::RunRequest;
  RunRequest req;
  bool list = false;
  CLI::App app{"Run PROGRAM, optionally in a crbox sandbox (new pid, mount, uts, ipc and time namespaces).", "cr_run"};
  app.set_version_flag("--version", std::string("cr_run (crbox) ") + CRBOX_VERSION);
  app.prefix_command();  // everything from PROGRAM on belongs to the program
  app.add_flag("--list", list, "List live sandboxes (id, init pid, program pid, program) and exit");
  app.add_flag("--sandbox", req.sandbox, "Run in a sandbox (needs root)");
  app.add_flag("--omit", req.omit,
               "Preload libcr_omit.so instead of libcr_run.so: checkpoints leave the program out (BLCR's way for "
               "launchers such as mpirun); what it starts is checkpointed as usual");
  app.add_option("--name", req.name, "Sandbox id in the registry (default: random); [A-Za-z0-9_.-]+, unique")->type_name("ID");
  app.add_option("--hostname", req.hostname, "Host name inside (default: crbox)")->type_name("NAME");
  app.add_option("--net", req.net, "Network: host (default) or none (only lo, up)")->type_name("MODE");
  app.add_option("--rootfs", req.rootfs, "Directory to use as / (pivot_root)")->type_name("DIR");
  repeatable(app, "--bind", req.binds, "Bind-mount SRC at DST (default DST = SRC); repeatable")->type_name("SRC[:DST]");
  repeatable(app, "--ro-bind", req.ro_binds, "Read-only bind mount; repeatable")->type_name("SRC[:DST]");
  app.add_flag("--read-only", req.read_only, "Make the root file system read-only");
  app.add_flag("-t,--tty", req.tty,
               "Give the program a pseudo-terminal as its controlling terminal and stdin/stdout/stderr, "
               "relayed to cr_run's own (like docker run -t); needs --sandbox");
  repeatable(app, "--env", req.env, "Set an environment variable for the program; repeatable")->type_name("K=V");
  app.add_option("--cwd", req.cwd, "Working directory inside (absolute)")->type_name("DIR");
  app.add_option("--uid", req.uid, "Numeric user id to run the program as")->type_name("UID");
  app.add_option("--gid", req.gid, "Numeric group id to run the program as")->type_name("GID");
  repeatable(app, "--cap-add", req.cap_add, "Add capabilities (NAME, CAP_NAME or ALL; comma-separated or repeated)")->type_name("CAPS");
  repeatable(app, "--cap-drop", req.cap_drop, "Drop capabilities (NAME, CAP_NAME or ALL)")->type_name("CAPS");
  app.add_option("--seccomp", req.seccomp, "Seccomp policy: default or none")->type_name("MODE");
  app.add_option("--seccomp-profile", req.seccomp_profile, "Docker/OCI JSON seccomp profile")->type_name("FILE");
  repeatable(app, "--rlimit", req.rlimits, "Resource limit, e.g. nofile=1024:4096 or core=unlimited; repeatable")->type_name("NAME=SOFT[:HARD]");
  app.add_option("--memory", req.memory, "Memory limit (cgroup), e.g. 512M")->type_name("BYTES");
  app.add_option("--pids-limit", req.pids_limit, "Maximum number of processes (cgroup)")->type_name("N");
  app.add_option("--time-offset", req.time_offset, "Shift CLOCK_MONOTONIC and CLOCK_BOOTTIME inside by SECONDS")->type_name("SECONDS");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(e.what(), kUsage);
  }
  if (list) {
    try {
      return list_sandboxes();
    } catch (const std::exception& e) {
      return fail(e.what(), kFailure);
    }
  }
  req.argv = app.remaining();
  // With prefix_command(), CLI11 hands an unknown option over as if it began the program's part.
  if (!req.argv.empty() && req.argv.front() != "--" && req.argv.front().size() > 1 && req.argv.front()[0] == '-') {
    return fail("unknown option " + req.argv.front() + " (see cr_run --help)", kUsage);
  }
  if (!req.argv.empty() && req.argv.front() == "--") req.argv.erase(req.argv.begin());

  crbox::runtime::RunPlan plan;
  try {
    plan = crbox::runtime::plan_run(req);
  } catch (const crbox::Error& e) {
    return fail(e.what(), kUsage);
  }

  try {
    if (!plan.sandbox) {
      for (const auto& kv : plan.spec.env) {
        auto eq = kv.find('=');
        ::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
      }
      const char* path = std::getenv("PATH");
      crbox::runtime::resolve_program(plan.spec.argv[0], path ? path : "");
      const char* current = std::getenv("LD_PRELOAD");
      auto preload = crbox::runtime::libcr_preload(plan.omit, current ? current : "");
      return crbox::runtime::run_plain(plan.spec.argv, preload.value_or(""));
    }
    // Inside a --rootfs the program is looked up after the switch, by the application itself.
    if (plan.spec.rootfs.empty()) {
      std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
      for (const auto& kv : plan.spec.env) {
        if (kv.rfind("PATH=", 0) == 0) path = kv.substr(5);
      }
      crbox::runtime::resolve_program(plan.spec.argv[0], path);
    }
    crbox::runtime::LaunchOptions opts;
    opts.spec = plan.spec;
    {
      // libcr_run.so (or libcr_omit.so) for the program, after whatever LD_PRELOAD it would get.
      const char* inherited = std::getenv("LD_PRELOAD");
      std::string current = inherited ? inherited : "";
      for (const auto& kv : plan.spec.env) {
        if (kv.rfind("LD_PRELOAD=", 0) == 0) current = kv.substr(11);
      }
      if (auto preload = crbox::runtime::libcr_preload(plan.omit, current, plan.spec.rootfs)) {
        opts.spec.env.push_back("LD_PRELOAD=" + *preload);
      }
    }
    opts.id = plan.id;
    opts.time_offsets_ns = plan.time_offsets_ns;
    return crbox::runtime::run_sandbox(opts);
  } catch (const crbox::runtime::ProgramError& e) {
    return fail(e.what(), e.exit_status());
  } catch (const std::exception& e) {
    return fail(e.what(), kFailure);
  }
}
