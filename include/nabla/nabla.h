/* nabla — a reverse-mode automatic-differentiation tensor engine in C.
 *   tensor.h    tensors, scopes (the memory model), errors, random numbers
 *   runtime.h   the CPU, BLIS's kernels, nabla's kernel sets, threads inside ops
 *   ops.h       primitive differentiable ops with their shape rules
 *   autograd.h  backward, gradients of gradients, grad mode
 *   gradcheck.h numerical gradient checking
 *   loss.h      classification losses and L2 regularisation
 *   nn.h        functional layers (affine, conv, norms, dropout) composed from ops
 *   module.h    modules that own named parameters (Linear, Conv2d, Sequential, ...)
 *   model.h     classifiers with cs231n's contract (TwoLayerNet, FullyConnectedNet, ConvNet, ResNet)
 *   optim.h     optimizers (SGD, momentum, Nesterov, RMSProp, Adam, AdamW), clipping, LR schedules
 *   data.h      data sets (IDX/MNIST, CIFAR-10), preprocessing, minibatches with augmentation
 *   safetensors.h  checkpoint files in the safetensors format (atomic save, validating load)
 *   solver.h    cs231n's Solver: epochs, accuracy checks, histories, best parameters, resume
 */
#ifndef NABLA_H
#define NABLA_H

#include "tensor.h"
#include "runtime.h"
#include "ops.h"
#include "autograd.h"
#include "custom.h"
#include "gradcheck.h"
#include "loss.h"
#include "nn.h"
#include "module.h"
#include "model.h"
#include "optim.h"
#include "data.h"
#include "safetensors.h"
#include "solver.h"
#include "dist.h"

#endif
