"""dlab-data: download the datasets a class uses into one shared folder, checked and laid out
where the standard loaders look.

    dlab-data list                  what it knows and what is already there
    dlab-data fetch mnist cifar10   download (resuming a broken download), verify, lay out
    dlab-data fetch --all

pooch does the fetching: its registry of checksums, its retries, and its rule that a file
reaches its final name only after the checksum matched. What pooch lacks is resuming, so the
downloader below keeps a `.part` file and asks the server for the rest (HTTP Range).
"""

import argparse
import datetime
import errno
import gzip
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import pooch
import requests

REGISTRY = Path(__file__).with_name("registry.json")
DEFAULT_DIR = os.environ.get("DLAB_DATA_DIR", "/srv/data")


class FetchError(Exception):
    """A failure a person can act on; the message says what to do."""


def load_registry(path=REGISTRY):
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise FetchError(f"cannot read the dataset registry {path}: {err}") from err
    return {name: entry for name, entry in entries.items() if not name.startswith("_")}


def file_hash(path, algorithm="sha256"):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"{algorithm}:{digest.hexdigest()}"


class ResumableDownloader:
    """A pooch downloader that keeps what it got in `<file>.part` and resumes from there.

    pooch gives it a temporary file to fill; the `.part` file becomes that file only when it
    is complete, and pooch then checks the hash and moves it to its final name.
    """

    def __init__(self, partial, timeout=60, progress=True):
        self.partial = Path(partial)
        self.timeout = timeout
        self.progress = progress

    def __call__(self, url, output_file, pooch_obj, check_only=False):
        if check_only:
            return requests.head(url, timeout=self.timeout, allow_redirects=True).ok
        have = self.partial.stat().st_size if self.partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            if have and response.status_code == 416:  # nothing left to send: the part is whole
                os.replace(self.partial, output_file)
                return
            response.raise_for_status()
            if have and response.status_code != 206:  # the server ignored Range: start over
                have = 0
            if have:
                print(f"dlab-data: resuming {self.partial.name[:-5]} at {have:,} bytes", flush=True)
            total = int(response.headers.get("content-length", 0)) + have or None
            from tqdm.auto import tqdm

            with open(self.partial, "ab" if have else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, leave=False,
                desc=self.partial.name[:-5], disable=not self.progress,
            ) as bar:
                for block in response.iter_content(chunk_size=1 << 16):
                    out.write(block)
                    bar.update(len(block))
        os.replace(self.partial, output_file)


def _atomic_place(make, target):
    """Run make(tmp_path) next to target, then rename it into place: never a half file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        os.unlink(tmp)
        make(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _link(source, target):
    def make(tmp):
        try:
            os.link(source, tmp)  # same filesystem: no second copy
        except OSError:
            shutil.copyfile(source, tmp)

    _atomic_place(make, target)


def _gunzip(source, target):
    def make(tmp):
        with gzip.open(source, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)

    _atomic_place(make, target)


def _untar(source, target_dir, scratch):
    """Extract into scratch, then swap each top-level entry into target_dir."""
    work = Path(tempfile.mkdtemp(prefix="untar-", dir=scratch))
    try:
        with tarfile.open(source) as archive:
            # Only plain files and folders inside the target (Debian's Python 3.11.2 predates
            # tarfile's extraction filters, so check by hand).
            for member in archive.getmembers():
                parts = Path(member.name).parts
                if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
                    raise FetchError(f"{source.name}: unsafe entry {member.name!r}; refusing to extract it")
            archive.extractall(work)
        target_dir.mkdir(parents=True, exist_ok=True)
        for entry in sorted(work.iterdir()):
            if entry.name.startswith("._"):  # macOS resource forks in some archives
                continue
            final = target_dir / entry.name
            if final.exists():  # an earlier fetch: move it into the scratch folder, removed below
                os.replace(final, work / f".old-{entry.name}")
            os.replace(entry, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _mnist_idx(source, target_dir):
    """Write torchvision's raw MNIST files (IDX format) from Keras' mnist.npz."""
    import numpy as np

    with np.load(source, allow_pickle=False) as f:
        arrays = {name: f[name] for name in ("x_train", "y_train", "x_test", "y_test")}
    names = {
        "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
    }
    for key, name in names.items():
        array = arrays[key].astype(np.uint8)
        header = (0x0800 | array.ndim).to_bytes(4, "big")  # IDX magic: ubyte, ndim
        header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)

        def make(tmp, header=header, array=array):
            tmp.write_bytes(header + array.tobytes())

        _atomic_place(make, target_dir / name)


class DataDir:
    """The shared data folder: layouts at the top, dlab-data's own state under .dlab/."""

    def __init__(self, root):
        self.root = Path(root)
        self.state = self.root / ".dlab"

    def manifest(self, name):
        path = self.state / f"{name}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def check_writable(self):
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.state, prefix=".probe-")
            probe.close()
        except OSError as err:
            raise FetchError(
                f"cannot write to {self.root} ({err.strerror}). In a class the data folder is "
                "mounted read-only: the organizer fetches on the host with "
                "`make data DATASETS=\"...\"`. On your own, use --dir to choose another folder."
            ) from err


def fetch(name, entry, data, retries=2, progress=True):
    """Download every file of one dataset, verify it, lay it out, then write its manifest."""
    downloads = data.state / "downloads" / name
    downloads.mkdir(parents=True, exist_ok=True)
    previous = data.manifest(name) or {}
    known = {}
    for fname, spec in entry["files"].items():
        # No published checksum: require the one recorded on the first fetch, if any.
        known[fname] = spec.get("hash") or previous.get("files", {}).get(fname)
    need = sum(spec.get("size", 0) for spec in entry["files"].values())
    free = shutil.disk_usage(data.root).free
    if need and free < 3 * need:  # the download, its layout copy, some room to spare
        raise FetchError(
            f"{name}: only {free / 1e6:,.0f} MB free in {data.root}, about {3 * need / 1e6:,.0f} MB "
            "needed. Free some space or choose another folder with --dir."
        )
    fetcher = pooch.create(
        path=downloads, base_url="", registry=known,
        urls={fname: spec["url"] for fname, spec in entry["files"].items()},
        retry_if_failed=retries,
    )
    got = {}
    for fname, spec in entry["files"].items():
        partial = downloads / f"{fname}.part"
        try:
            path = Path(fetcher.fetch(fname, downloader=ResumableDownloader(partial, progress=progress)))
        except ValueError as err:  # pooch: checksum mismatch after every retry
            raise FetchError(
                f"{name}: {fname} from {spec['url']} does not match its checksum, so it was "
                f"removed ({err}). The source may be damaged or a proxy may be changing it; "
                "try again later or from another network."
            ) from err
        except requests.RequestException as err:
            size = partial.stat().st_size if partial.exists() else 0
            kept = f" {size:,} bytes are kept; the next fetch resumes." if size else ""
            raise FetchError(
                f"{name}: downloading {spec['url']} failed: {err}.{kept} Check the network "
                "(and HTTPS_PROXY / REQUESTS_CA_BUNDLE behind a proxy), then run the fetch again."
            ) from err
        except OSError as err:
            if err.errno == errno.ENOSPC:
                partial.unlink(missing_ok=True)
                raise FetchError(f"{name}: the disk holding {data.root} is full. Free some space and fetch again.") from err
            raise
        if "size" in spec and not spec.get("hash") and path.stat().st_size != spec["size"]:
            path.unlink()
            raise FetchError(
                f"{name}: {fname} is {path.stat().st_size:,} bytes, not the {spec['size']:,} its "
                "publisher gives, so it was removed. Try again later."
            )
        got[fname] = path
    for action, fname, target in entry["install"]:
        source, target = got[fname], data.root / target
        if action == "link":
            _link(source, target)
        elif action == "gunzip":
            _gunzip(source, target)
        elif action == "untar":
            _untar(source, target, data.state)
        elif action == "mnist-idx":
            _mnist_idx(source, target)
        else:
            raise FetchError(f"{name}: unknown install action {action!r} in the registry")
    hashes = {fname: file_hash(path) for fname, path in got.items()}
    for fname, spec in entry["files"].items():
        if not spec.get("hash") and fname not in previous.get("files", {}):
            print(f"dlab-data: {name}: {fname} has no published checksum; recorded {hashes[fname]}")
    record = {
        "name": name, "title": entry.get("title", ""),
        "fetched": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "files": hashes, "urls": {f: s["url"] for f, s in entry["files"].items()},
        "installed": [target for _, _, target in entry["install"]],
    }
    _atomic_place(lambda tmp: tmp.write_text(json.dumps(record, indent=1)), data.state / f"{name}.json")
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="dlab-data", description="Download the datasets a class uses into one shared folder.")
    parser.add_argument("--dir", default=DEFAULT_DIR, help="the data folder (default: $DLAB_DATA_DIR or /srv/data)")
    parser.add_argument("--registry", default=str(REGISTRY), help="a registry of datasets in the same JSON format as dlab's own")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the datasets it knows, and which are there")
    get = sub.add_parser("fetch", help="download, verify and lay out datasets")
    get.add_argument("names", nargs="*", metavar="NAME")
    get.add_argument("--all", action="store_true", help="every dataset in the registry")
    get.add_argument("--retries", type=int, default=2, help="retries per file after a broken download (default 2)")
    get.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    # Keep the data folder readable by every student container.
    os.umask(0o022)
    try:
        registry = load_registry(args.registry)
        data = DataDir(args.dir)
        if args.command == "list":
            for name, entry in registry.items():
                record = data.manifest(name)
                state = f"fetched {record['fetched']}" if record else "not fetched"
                print(f"{name:16} {state:34} {entry.get('title', '')}")
            return 0
        names = list(registry) if args.all else args.names
        if not names:
            parser.error("name the datasets to fetch, or give --all")
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise FetchError(f"unknown dataset {', '.join(unknown)}; known: {', '.join(registry)}")
        data.check_writable()
        for name in names:
            print(f"dlab-data: fetching {name} into {data.root}", flush=True)
            fetch(name, registry[name], data, retries=args.retries, progress=not args.quiet)
            print(f"dlab-data: {name} is ready", flush=True)
        return 0
    except FetchError as err:
        print(f"dlab-data: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dlab-data: interrupted; a partial download is kept and the next fetch resumes it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
