// The model is header-only (plain structs with cereal serialize functions); this file gives the
// folder's library a translation unit that checks the headers compile on their own.
#include "checkpoint/model/process.h"
#include "checkpoint/model/sandbox_spec.h"
