"""Pictures of the masks: which weights or units are open, and how close each m is to flipping.

[`mask_image`][lightning_auxprune.mask_images.mask_image] turns a layer's gate h(M) into a grey image in [0, 1] (1 =
open): for weight
masks the weight matrix, output units as rows and the fan-in as columns (a convolution's kernel
flattened into its row); for neuron masks a strip with one column per unit. Layers larger than
``max_side`` in either direction are averaged down, so a pixel shows the density of the block of
weights it covers. [`mask_values`][lightning_auxprune.mask_images.mask_values] are the m themselves for a histogram: a
mass near 0 is
masks about to flip.

Examples:
    >>> import torch
    >>> from lightning_auxprune.options import MaskOptions
    >>> from lightning_auxprune.parametrization import AuxMask
    >>> mask = AuxMask(torch.ones(2, 3), MaskOptions())
    >>> with torch.no_grad():
    ...     mask.aux[0, 1] = -1.0
    >>> mask_image(mask).tolist()
    [[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]

"""

from __future__ import annotations

import torch
from torch.nn import functional

from lightning_auxprune.parametrization import AuxMask

STRIP_HEIGHT = 8


def mask_image(mask: AuxMask, max_side: int = 256) -> torch.Tensor:
    """h(M) as a ``[height, width]`` float image on the CPU, averaged down to at most ``max_side``.

    Examples:
        >>> from lightning_auxprune.options import MaskOptions
        >>> mask_image(AuxMask(torch.ones(4, 3), MaskOptions(granularity="neuron"))).shape
        torch.Size([8, 4])

    """
    gate = mask.gate().float()
    image = gate.reshape(gate.shape[0], -1) if gate.dim() > 1 else gate.reshape(1, -1).expand(STRIP_HEIGHT, -1)
    height, width = image.shape
    if height > max_side or width > max_side:
        size = (min(height, max_side), min(width, max_side))
        image = functional.adaptive_avg_pool2d(image[None, None], size)[0, 0]
    return image.detach().cpu().contiguous()


def mask_values(mask: AuxMask) -> torch.Tensor:
    """The layer's m as a flat CPU tensor (for a histogram).

    Examples:
        >>> from lightning_auxprune.options import MaskOptions
        >>> mask_values(AuxMask(torch.ones(2, 2), MaskOptions())).tolist()
        [1.0, 1.0, 1.0, 1.0]

    """
    return mask.aux.detach().reshape(-1).float().cpu()
