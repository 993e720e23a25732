/* nabla — a reverse-mode automatic-differentiation tensor engine in C.
 *   tensor.h    tensors, scopes (the memory model), errors, random numbers
 *   ops.h       primitive differentiable ops with their shape rules
 *   autograd.h  backward, gradients of gradients, grad mode
 *   gradcheck.h numerical gradient checking
 *   loss.h      classification losses and L2 regularisation
 *   nn.h        functional layers (affine, conv, norms, dropout) composed from ops
 */
#ifndef NABLA_H
#define NABLA_H

#include "tensor.h"
#include "ops.h"
#include "autograd.h"
#include "gradcheck.h"
#include "loss.h"
#include "nn.h"

#endif
