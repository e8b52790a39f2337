/* Linked into programs by the installed libcr_omit.so linker script (see link_run.c). */
extern int cri_libcr_omit_link_me;
__attribute__((used, visibility("hidden"))) int *const cri_libcr_omit_ref = &cri_libcr_omit_link_me;
