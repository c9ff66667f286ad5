"""Write small files in the real formats of the datasets dlab-data fetches (run inside dlab/cpu:
it has numpy and Pillow). Random pixels, real containers: npz, gzipped IDX, CIFAR's pickled
batches in a tar.gz, notMNIST's folders of PNGs (with one empty file, as the real archive has).

    python make_fake_datasets.py [--full-size] OUT_DIR
"""
import gzip
import io
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

out = Path(sys.argv[-1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
# --full-size: as many examples as the real datasets, for `make bench` to time the labs at
# the real sizes where the real files cannot be downloaded.
FULL = "--full-size" in sys.argv
N_TRAIN, N_TEST = (60000, 10000) if FULL else (120, 30)
CIFAR_BATCH = 10000 if FULL else 20
NOTMNIST_PER_LETTER = 1872 if FULL else 5
TEXT_REPEAT = 18000 if FULL else 2000


def images(n, *shape):
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8)


def labels(n):
    return np.arange(n, dtype=np.uint8) % 10


# MNIST as Keras ships it.
np.savez_compressed(out / "mnist.npz", x_train=images(N_TRAIN, 28, 28), y_train=labels(N_TRAIN),
                    x_test=images(N_TEST, 28, 28), y_test=labels(N_TEST))


# Fashion-MNIST: gzipped IDX files.
def idx(array):
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.tobytes(), mtime=0)


for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
    (out / f"{prefix}-images-idx3-ubyte.gz").write_bytes(idx(images(n, 28, 28)))
    (out / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(idx(labels(n)))


def add(archive, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


# CIFAR-10, python version: pickled dicts of bytes keys.
with tarfile.open(out / "cifar-10-python.tar.gz", "w:gz") as archive:
    for name, n in [(f"data_batch_{i}", CIFAR_BATCH) for i in range(1, 6)] + [("test_batch", N_TEST)]:
        batch = {b"data": images(n, 3072), b"labels": list(labels(n)), b"batch_label": name.encode(),
                 b"filenames": [f"{i}.png".encode() for i in range(n)]}
        add(archive, f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=2))
    add(archive, "cifar-10-batches-py/batches.meta", pickle.dumps(
        {b"label_names": [c.encode() for c in ("airplane", "automobile", "bird", "cat", "deer",
                                                 "dog", "frog", "horse", "ship", "truck")]}, protocol=2))

# notMNIST small: a folder of 28x28 PNGs per letter.
with tarfile.open(out / "notMNIST_small.tar.gz", "w:gz") as archive:
    for letter in "ABCDEFGHIJ":
        for i in range(NOTMNIST_PER_LETTER):
            png = io.BytesIO()
            Image.fromarray(images(1, 28, 28)[0]).save(png, format="PNG")
            add(archive, f"notMNIST_small/{letter}/{letter}{i}.png", png.getvalue())
    add(archive, "notMNIST_small/A/broken.png", b"")

# A text corpus.
(out / "input.txt").write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * TEXT_REPEAT)
print("\n".join(sorted(p.name for p in out.iterdir())))
