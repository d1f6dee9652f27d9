"""IDX reader/writer: round trips and every kind of corruption."""
import struct

import numpy as np
import pytest

from jaxreg.data import idx
from jaxreg.data.idx import CorruptFileError, md5sum, read_idx, write_idx


@pytest.fixture
def images():
    return np.arange(5 * 28 * 28, dtype=np.int64).reshape(5, 28, 28).astype(np.uint8)


def test_round_trip_images_and_labels(tmp_path, images):
    labels = np.array([5, 0, 4, 1, 9], np.uint8)
    write_idx(tmp_path / "im", images)
    write_idx(tmp_path / "lb", labels)
    got_im, got_lb = read_idx(tmp_path / "im"), read_idx(tmp_path / "lb")
    assert got_im.dtype == np.uint8 and got_im.shape == (5, 28, 28)
    assert got_lb.dtype == np.uint8 and got_lb.shape == (5,)
    np.testing.assert_array_equal(got_im, images)
    np.testing.assert_array_equal(got_lb, labels)
    # exact on-disk layout: big-endian magic, dims, then the raw bytes
    raw = (tmp_path / "im").read_bytes()
    assert raw[:16] == struct.pack(">IIII", 0x803, 5, 28, 28)
    assert len(raw) == 16 + images.size
    assert (tmp_path / "lb").read_bytes()[:8] == struct.pack(">II", 0x801, 5)


def test_write_leaves_no_temp_file_and_overwrites(tmp_path, images):
    write_idx(tmp_path / "im", images)
    write_idx(tmp_path / "im", images[:2])
    assert [p.name for p in tmp_path.iterdir()] == ["im"]
    assert read_idx(tmp_path / "im").shape == (2, 28, 28)


def test_write_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros((2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="1-D or 3-D"):
        write_idx(tmp_path / "x", np.zeros((2, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_md5_checked(tmp_path, images):
    path = write_idx(tmp_path / "im", images)
    good = md5sum(path)
    np.testing.assert_array_equal(read_idx(path, expected_md5=good), images)
    with pytest.raises(CorruptFileError) as err:
        read_idx(path, expected_md5="0" * 32)
    assert isinstance(err.value, ValueError)
    assert str(path) in str(err.value) and "MD5" in str(err.value)


def test_bad_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(struct.pack(">II", 0x00000802, 1) + b"\0" * 4)
    with pytest.raises(CorruptFileError, match="bad magic number 0x00000802") as err:
        read_idx(path)
    assert str(path) in str(err.value)
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"\0" * 20)  # a gzip file
    with pytest.raises(CorruptFileError, match="not an uncompressed"):
        read_idx(path)


def test_truncated_and_trailing(tmp_path, images):
    path = write_idx(tmp_path / "im", images)
    raw = path.read_bytes()
    path.write_bytes(raw[:-1])
    with pytest.raises(CorruptFileError, match="truncated") as err:
        read_idx(path)
    assert str(path) in str(err.value) and str(16 + images.size) in str(err.value)
    path.write_bytes(raw + b"\0")
    with pytest.raises(CorruptFileError, match="trailing bytes"):
        read_idx(path)
    path.write_bytes(raw[:10])  # header itself cut short
    with pytest.raises(CorruptFileError, match="truncated header"):
        read_idx(path)
    path.write_bytes(b"\0\0")
    with pytest.raises(CorruptFileError, match="too short"):
        read_idx(path)


def test_zero_dimension(tmp_path):
    path = tmp_path / "z"
    path.write_bytes(struct.pack(">IIII", 0x803, 0, 28, 28))
    with pytest.raises(CorruptFileError, match="zero dimension"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


def test_known_checksums_table():
    assert idx.MNIST_FILES == tuple(idx.MNIST_MD5)
    assert idx.MNIST_MD5["train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    assert idx.MNIST_MD5["train-labels-idx1-ubyte"] == "a25bea736e30d166cdddb491f175f624"
    assert idx.MNIST_MD5["t10k-images-idx3-ubyte"] == "2646ac647ad5339dbf082846283269ea"
    assert idx.MNIST_MD5["t10k-labels-idx1-ubyte"] == "27ae3e4e09519cfbb04c329615203637"
