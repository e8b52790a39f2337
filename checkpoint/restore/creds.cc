// Credentials, applied last among the injected state because each step can take away the
// privilege the next one needs (capabilities(7), "Effect of user ID changes on capabilities").
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "checkpoint/restore/apply.h"
#include "util/error.h"

namespace crbox::restore {

void apply_creds(Puppet& pp, arch::Injector& inj, const model::Creds& c) {
  // The image's securebits while we still hold CAP_SETPCAP, plus KEEP_CAPS so the permitted set
  // survives the uid change below (unless the image locked that bit off).
  uint32_t bits = c.securebits;
  if (!(bits & SECBIT_KEEP_CAPS_LOCKED)) bits |= SECBIT_KEEP_CAPS;
  inj.check("PR_SET_SECUREBITS", SYS_prctl, PR_SET_SECUREBITS, bits);
  // Bounding set first: dropping needs CAP_SETPCAP, which the image's set may lack.
  for (int cap = 0; cap <= 63; cap++) {
    if (c.cap_bnd & (1ull << cap)) continue;
    long r = inj.call(SYS_prctl, PR_CAPBSET_DROP, static_cast<uint64_t>(cap));
    if (r == -EINVAL) break;  // past the last capability this kernel knows
    if (r < 0) throw_errno("dropping capability " + std::to_string(cap) + " from the bounding set", static_cast<int>(-r));
  }
  uint64_t groups = pp.put(c.groups.data(), c.groups.size() * sizeof(uint32_t), 0);
  inj.check("setgroups", SYS_setgroups, c.groups.size(), groups);
  inj.check("setresgid", SYS_setresgid, c.gids[0], c.gids[1], c.gids[2]);
  inj.check("setfsgid", SYS_setfsgid, c.gids[3]);
  inj.check("setresuid", SYS_setresuid, c.uids[0], c.uids[1], c.uids[2]);
  inj.check("setfsuid", SYS_setfsuid, c.uids[3]);

  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  data[0].effective = static_cast<uint32_t>(c.cap_eff);
  data[1].effective = static_cast<uint32_t>(c.cap_eff >> 32);
  data[0].permitted = static_cast<uint32_t>(c.cap_prm);
  data[1].permitted = static_cast<uint32_t>(c.cap_prm >> 32);
  data[0].inheritable = static_cast<uint32_t>(c.cap_inh);
  data[1].inheritable = static_cast<uint32_t>(c.cap_inh >> 32);
  uint64_t h = pp.put(&hdr, sizeof hdr, 512);
  uint64_t d = pp.put(data, sizeof data, 1024);
  inj.check("capset", SYS_capset, h, d);
  for (int cap = 0; cap <= 63; cap++) {
    if (!(c.cap_amb & (1ull << cap))) continue;
    inj.check("raising ambient capability " + std::to_string(cap), SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE,
             static_cast<uint64_t>(cap), 0, 0);
  }
  // PR_SET_KEEPCAPS needs no privilege: it puts the image's own KEEP_CAPS bit back.
  if (bits != c.securebits)
    inj.check("PR_SET_KEEPCAPS", SYS_prctl, PR_SET_KEEPCAPS, (c.securebits & SECBIT_KEEP_CAPS) ? 1 : 0);
  if (c.no_new_privs) inj.check("PR_SET_NO_NEW_PRIVS", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

void apply_seccomp_filters(Puppet& pp, const model::Process& p) {
  // Oldest first, each loaded with SECCOMP_FILTER_FLAG_TSYNC so every thread gets it (seccomp(2)).
  // The puppet still holds CAP_SYS_ADMIN, which loading a filter without no_new_privs needs, and it
  // is traced with PTRACE_O_SUSPEND_SECCOMP, so the filters do not apply to the injected syscalls.
  for (const auto& prog : p.seccomp_filters) {
    if (prog.empty() || prog.size() % 8 != 0) throw Error("a seccomp filter in the image is malformed");
    uint64_t insns = pp.put(prog.data(), prog.size(), 4096);
    struct {
      uint16_t len;
      uint8_t pad[6];
      uint64_t filter;
    } fprog{static_cast<uint16_t>(prog.size() / 8), {}, insns};
    uint64_t addr = pp.put(&fprog, sizeof fprog, 0);
    long r = pp.call(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 1 /* SECCOMP_FILTER_FLAG_TSYNC */, addr);
    if (r < 0) throw_errno("restoring a seccomp filter", static_cast<int>(-r));
    if (r > 0) throw Error("restoring a seccomp filter: thread " + std::to_string(r) + " could not take it");
  }
}

}  // namespace crbox::restore
