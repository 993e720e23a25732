/* written in progress */
#include "../internal.h"
