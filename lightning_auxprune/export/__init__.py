"""Turning a pruned model into a deployable one.

* [`bake`][lightning_auxprune.export.bake.bake]: masks multiplied in, the original ``state_dict``
  keys (also from a checkpoint's ``state_dict``: ``bake_state_dict``);
* [`shrink`][lightning_auxprune.export.shrink.shrink]: closed units removed physically (neuron
  masks), saved and loaded with ``save_shrunk``/``load_shrunk``;
* [`fold_batchnorm`][lightning_auxprune.export.fold.fold_batchnorm]: BatchNorm multiplied into the
  Conv/Linear layer before it, for the model you deploy;
* [`save_sparse`][lightning_auxprune.export.sparse_file.save_sparse]: a CSR file of a weight-pruned
  model; [`sparsify_linear`][lightning_auxprune.export.sparse_linear.sparsify_linear]: CSR kernels
  for very sparse Linear layers. Both share the checks and the conversion of
  [`csr`][lightning_auxprune.export.csr].

The functions are importable from ``lightning_auxprune`` itself.
"""
