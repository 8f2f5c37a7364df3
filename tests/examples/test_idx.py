import gzip

import pytest
import torch

from examples.data.idx import read_idx, write_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_keeps_shape_and_values(tmp_path, name):
    values = torch.randint(0, 256, (5, 4, 3), dtype=torch.uint8)
    write_idx(tmp_path / name, values)
    back = read_idx(tmp_path / name)
    assert back.shape == (5, 4, 3) and back.dtype == torch.uint8
    assert torch.equal(back, values)


def test_header_is_the_mnist_one(tmp_path):
    write_idx(tmp_path / "x", torch.zeros(2, 28, 28, dtype=torch.uint8))
    assert (tmp_path / "x").read_bytes()[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28])


def test_truncated_file_says_delete_and_prepare_again(tmp_path):
    write_idx(tmp_path / "x", torch.ones(10, dtype=torch.uint8))
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"holds 7 values but its header says \(10,\).*delete it"):
        read_idx(tmp_path / "x")


def test_other_type_codes_are_refused(tmp_path):
    (tmp_path / "f.gz").write_bytes(gzip.compress(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\x00" * 4))
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        read_idx(tmp_path / "f.gz")
