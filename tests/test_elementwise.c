/* placeholder: being written */
#include "nbtest.h"
int main(void) { return 0; }
