/* nabla — a reverse-mode automatic-differentiation tensor engine in C.
 *   tensor.h    tensors, scopes (the memory model), errors, random numbers
 *   ops.h       primitive differentiable ops with their shape rules
 *   autograd.h  backward, gradients of gradients, grad mode
 *   gradcheck.h numerical gradient checking
 */
#ifndef NABLA_H
#define NABLA_H

#include "tensor.h"
#include "ops.h"
#include "autograd.h"
#include "gradcheck.h"

#endif
