"""Example data modules (see :mod:`examples.data.fashion_mnist`)."""
