/* crbox's libcr: cr_strerror(), BLCR's descriptions for its codes, strerror(3)'s otherwise. */
#include <string.h>

#include "internal.h"

#define CR_ERROR_DEF(name, desc) desc,
static const char *const descriptions[] = {
#include "blcr_errcodes.h"
};
#undef CR_ERROR_DEF

CRI_EXPORT const char *cr_strerror(int errnum) {
  if (errnum > CR_MIN_ERRCODE && errnum < CR_MAX_ERRCODE) return descriptions[errnum - CR_MIN_ERRCODE - 1];
  return strerror(errnum);
}
