"""The TFDS builder on tiny synthetic IDX files: order and values survive the round trip,
nothing touches the network, and the npz memo is used and keyed by the checksums."""
import socket

import numpy as np
import pytest

pytest.importorskip("tensorflow_datasets")

from jaxreg.data import idx, tfds_mnist  # noqa: E402
from jaxreg.data.png import png_decode, png_encode  # noqa: E402
from jaxreg.data.tfds_mnist import load_mnist, read_split  # noqa: E402

N_TRAIN, N_TEST = 50, 20


@pytest.fixture
def mnist(tmp_path, monkeypatch):
    """Synthetic IDX files in tmp_path/src, temp cache, fake MD5 table, network refused."""
    rng = np.random.default_rng(1)
    arrays = {"train_images": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
              "train_labels": (np.arange(N_TRAIN) % 10).astype(np.uint8),
              "test_images": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
              "test_labels": ((np.arange(N_TEST) * 3) % 10).astype(np.uint8)}
    src = tmp_path / "src"
    src.mkdir()
    for name, key in zip(idx.MNIST_FILES, tfds_mnist.ARRAY_KEYS):
        idx.write_idx(src / name, arrays[key])
    monkeypatch.setattr(idx, "MNIST_MD5", {n: idx.md5sum(src / n) for n in idx.MNIST_FILES})
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("JAXREG_DATA_DIR", raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return src, arrays


def test_round_trip_keeps_order_and_values(mnist, tmp_path):
    src, arrays = mnist
    out = load_mnist(src, verbose=False)
    assert sorted(out) == sorted(arrays)
    for key, a in arrays.items():
        assert out[key].dtype == np.uint8 and out[key].shape == a.shape
        np.testing.assert_array_equal(out[key], a)
    prepared = tmp_path / "cache" / "tfds" / "jaxreg_mnist" / "1.0.0"
    assert sorted(p.name for p in prepared.glob("*.array_record*")) == [
        "jaxreg_mnist-test.array_record-00000-of-00001",
        "jaxreg_mnist-train.array_record-00000-of-00001"]
    assert not [p for p in (tmp_path / "cache" / "tfds").rglob("*") if "incomplete" in p.name]
    assert tfds_mnist._memo_path().is_file()


def test_stored_order_differs_but_index_restores_it(mnist, tmp_path):
    src, arrays = mnist
    builder = tfds_mnist.prepare_builder(src, tmp_path / "tfds", verbose=False)
    assert builder.info.splits["train"].num_examples == N_TRAIN
    feats = builder.info.features
    assert feats["image"].shape == (28, 28, 1) and feats["label"].num_classes == 10
    _, stored = read_split(builder, "train", ordered=False)
    images, labels = read_split(builder, "train")
    assert not np.array_equal(stored, arrays["train_labels"])  # TFDS shuffled the records
    assert sorted(stored.tolist()) == sorted(arrays["train_labels"].tolist())
    np.testing.assert_array_equal(labels, arrays["train_labels"])
    np.testing.assert_array_equal(images, arrays["train_images"])


def test_memo_is_reused_and_keyed_by_checksums(mnist, monkeypatch):
    src, arrays = mnist
    load_mnist(src, verbose=False)
    memo = tfds_mnist._memo_path()

    def no_prepare(*a, **k):
        raise AssertionError("should have used the memo")

    monkeypatch.setattr(tfds_mnist, "prepare_builder", no_prepare)
    np.testing.assert_array_equal(load_mnist(src, verbose=False)["test_images"],
                                  arrays["test_images"])
    monkeypatch.setitem(idx.MNIST_MD5, "t10k-labels-idx1-ubyte", "0" * 32)
    assert tfds_mnist._memo_path() != memo


def test_corrupt_memo_is_ignored(mnist):
    src, arrays = mnist
    load_mnist(src, verbose=False)
    tfds_mnist._memo_path().write_bytes(b"not an npz")
    np.testing.assert_array_equal(load_mnist(src, verbose=False)["train_labels"],
                                  arrays["train_labels"])


@pytest.mark.parametrize("damage", ["truncated", "wrong-content", "wrong-dtype"])
def test_a_damaged_memo_is_rebuilt_and_checked_against_the_idx_checksums(mnist, monkeypatch, damage):
    src, arrays = mnist
    load_mnist(src, verbose=False)
    memo = tfds_mnist._memo_path()
    if damage == "truncated":  # a zip cut short (BadZipFile when read)
        memo.write_bytes(memo.read_bytes()[: memo.stat().st_size // 2])
    else:  # a well-formed npz whose arrays are not the IDX files' (one label changed; or int64 pixels)
        bad = {k: v.copy() for k, v in arrays.items()}
        if damage == "wrong-content":
            bad["train_labels"][3] = (bad["train_labels"][3] + 1) % 10
        else:
            bad["test_images"] = bad["test_images"].astype(np.int64)
        with open(memo, "wb") as f:
            np.savez(f, **bad)
    assert tfds_mnist._load_memo(memo) is None
    out = load_mnist(src, verbose=False)
    for key, a in arrays.items():
        np.testing.assert_array_equal(out[key], a)
        assert out[key].dtype == np.uint8
    assert tfds_mnist._load_memo(memo) is not None  # rewritten, good again

    def no_prepare(*a, **k):
        raise AssertionError("should have used the rebuilt memo")

    monkeypatch.setattr(tfds_mnist, "prepare_builder", no_prepare)
    np.testing.assert_array_equal(load_mnist(src, verbose=False)["train_labels"], arrays["train_labels"])


def test_png_codec():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    for png, im in zip(png_encode(images), images):
        assert png.startswith(b"\x89PNG")
        np.testing.assert_array_equal(png_decode(png), im)
    assert png_decode(b"GIF89a") is None


def test_png_decode_falls_back_for_other_pngs():
    """A PNG with a non-zero row filter is left to TFDS's decoder."""
    import struct
    import zlib

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x01\x05\x05")) + chunk(b"IEND", b""))
    assert png_decode(png) is None


def test_load_tfds_dataset_fails_fast_offline(mnist, monkeypatch):
    monkeypatch.setattr(tfds_mnist, "is_online", lambda host, port: "offline (test)")
    with pytest.raises(RuntimeError, match="offline"):
        tfds_mnist.load_tfds_dataset("mnist", verbose=False)
    with pytest.raises(ValueError, match="name must be one of"):
        tfds_mnist.load_tfds_dataset("cifar10")


def test_stale_prepared_dataset_is_rebuilt(mnist, tmp_path, monkeypatch):
    """A dataset prepared from other files is detected (compared with the IDX files)
    and prepared again, not silently used."""
    src, arrays = mnist
    load_mnist(src, verbose=False)
    new = {k: (255 - a) if k.endswith("images") else a for k, a in arrays.items()}
    for name, key in zip(idx.MNIST_FILES, tfds_mnist.ARRAY_KEYS):
        idx.write_idx(src / name, new[key])
    monkeypatch.setattr(idx, "MNIST_MD5", {n: idx.md5sum(src / n) for n in idx.MNIST_FILES})
    calls, real_prepare = [], tfds_mnist.prepare_builder

    def spy(*args, **kwargs):
        calls.append(kwargs.get("overwrite", False))
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(tfds_mnist, "prepare_builder", spy)
    out = load_mnist(src, verbose=False)  # new MD5 table -> new memo key -> reads TFDS
    assert calls == [False, True]  # stale data found, then prepared again
    for key, a in new.items():
        np.testing.assert_array_equal(out[key], a)
