/* Where crbox's tools and libraries live, as the build passes them (runtime/libcr/CMakeLists.txt
 * sets these on libcr and on the runtime library): installed, and in the build tree. Empty when
 * a file is compiled without them. Shared by libcr (C, to find cr_checkpoint) and cr_run (C++, to
 * find libcr_run.so for LD_PRELOAD). */
#ifndef CRBOX_LIBCR_PATHS_H
#define CRBOX_LIBCR_PATHS_H

#ifndef CRBOX_LIBCR_INSTALL_LIBDIR
#define CRBOX_LIBCR_INSTALL_LIBDIR ""
#endif
#ifndef CRBOX_INSTALL_BINDIR
#define CRBOX_INSTALL_BINDIR ""
#endif
#ifndef CRBOX_LIBCR_BUILD_DIR
#define CRBOX_LIBCR_BUILD_DIR ""
#endif
#ifndef CRBOX_BUILD_BINDIR
#define CRBOX_BUILD_BINDIR ""
#endif

#endif
