// The network namespace: a fresh one has only a loopback device, and it is down (network_namespaces(7)).
#pragma once

namespace crbox::ns {

// Brings `lo` up in the caller's network namespace with SIOCSIFFLAGS (netdevice(7)). Throws crbox::Error.
void bring_up_loopback();

}  // namespace crbox::ns
