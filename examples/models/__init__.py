"""Example architectures, looked up by name with :func:`build_model`."""

from examples.models.lenet import LeNet5, LeNet300100, build_model

__all__ = ["LeNet5", "LeNet300100", "build_model"]
