/* crbox's libcr: the list of BLCR-specific error codes.
 *
 * Not a normal header: blcr_common.h includes it with CR_ERROR_DEF(name, text) defined to build
 * the CR_E* enumeration, and the library includes it again to build cr_strerror()'s table. The
 * codes are numbered in this order from CR_MIN_ERRCODE + 1, exactly as BLCR 0.8.x numbers them,
 * so values stored or compared by existing programs keep their meaning. Never reorder; a new code
 * could only be appended. */
CR_ERROR_DEF(CR_ETEMPFAIL, "Temporary error: checkpoint cancelled")
CR_ERROR_DEF(CR_EPERMFAIL, "Permanent failure: checkpoint cancelled and job killed")
CR_ERROR_DEF(CR_ENOSUPPORT, "Checkpoint support not linked into one or more processes")
CR_ERROR_DEF(CR_EVERSION, "Requested kernel interface version is not supported")
CR_ERROR_DEF(CR_EOMITTED, "Process omitted from checkpoint at a callback's request")
CR_ERROR_DEF(CR_EBADARCH, "Context file does not match the kernel architecture")
CR_ERROR_DEF(CR_EPTRACED, "One or more target processes is being ptraced")
CR_ERROR_DEF(CR_EPTRACER, "One or more target processes has ptrace children")
CR_ERROR_DEF(CR_ERSTRTABRT, "Restart aborted: restart cancelled and job killed")
CR_ERROR_DEF(CR_ERESTARTED, "Request is invalid across a restart")
CR_ERROR_DEF(CR_ENOTCB, "Call is only valid from a checkpoint callback")
CR_ERROR_DEF(CR_ENOINIT, "Calling thread has not called cr_init()")
