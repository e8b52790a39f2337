/* Linked into programs by the installed libcr_run.so linker script: one reference to
 * libcr_run.so.0, so the linker keeps it as a dependency even under --as-needed. */
extern int cri_libcr_run_link_me;
__attribute__((used, visibility("hidden"))) int *const cri_libcr_run_ref = &cri_libcr_run_link_me;
