"""Blind kernel estimation (issue 24): the L0 recipe of Pan et al. (2014, 2016) with Cho & Lee's
edge selection, written for this project's conventions (physics.py), and the kernel-branch
estimator of the ``fast`` method.

* :mod:`.pyramid` -- the coarse-to-fine driver :func:`estimate_kernel_l0` and its settings;
* :mod:`.edges` -- gradients and edge selection;
* :mod:`.kernel_solve` -- the least-squares kernel step (exact 'valid' geometry, CG);
* :mod:`.pruning` -- per-iteration pruning and the final cut;
* :mod:`.selection` -- the GLKM prior choosing among candidate kernels (distance to its manifold);
* :mod:`.branch_pyramid` -- kernel estimation with any kernel branch (Adam on its parameters,
  coarse to fine; the ``fast`` method, SVOLA cells), :func:`~.branch_pyramid.estimate_kernels`;
* :mod:`.kernel_size` -- the automatic kernel size (``--kernel-size auto``).

The image step is :func:`glkm_prior.kernel_estimation.l0_image_step`.
"""

from .edges import initial_threshold, select_edges, valid_gradients
from .kernel_solve import ValidGram, solve_kernel
from .pruning import connected_components, final_cut, prune_kernel
from .pyramid import L0_DEFAULTS, estimate_kernel_l0, pyramid_levels, resolve_l0_options, upscale_kernel

__all__ = ["L0_DEFAULTS", "ValidGram", "connected_components", "estimate_kernel_l0", "final_cut", "initial_threshold",
           "prune_kernel", "pyramid_levels", "resolve_l0_options", "select_edges", "solve_kernel", "upscale_kernel",
           "valid_gradients"]
