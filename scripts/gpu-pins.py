#!/usr/bin/env python3
"""Writes scripts/gpu-requirements.txt and scripts/gpu-ort-requirements.txt: the wheels
`scripts/setup.sh --gpu` installs, each `name==version --hash=sha256:...`, the hashes read from
PyPI's JSON API (https://pypi.org/pypi/<name>/json) for the Linux x86_64 CPython 3.11 wheel of
that version. Then checks that each list is closed: every `Requires-Dist` of every wheel (read
from the wheel's own METADATA, PEP 658, a few kilobytes, never the wheel) that applies on Linux
x86_64 under CPython 3.11 is pinned in the same list at a version it accepts.

    python3 scripts/gpu-pins.py          # rewrite both files
    python3 scripts/gpu-pins.py --check  # only check the committed files against PyPI

Standard library only (the requirement grammar comes from pip's vendored `packaging`).
"""

import io
import json
import re
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name

HERE = Path(__file__).resolve().parent

# libtorch with CUDA: torch 2.9.0, the version burn 0.22.1's `tch` backend (tch 0.22.0) is built
# for, whose default PyPI wheel is the CUDA 12.8 build; with every wheel it requires there.
TORCH = {
    "torch": "2.9.0",
    "nvidia-cuda-nvrtc-cu12": "12.8.93",
    "nvidia-cuda-runtime-cu12": "12.8.90",
    "nvidia-cuda-cupti-cu12": "12.8.90",
    "nvidia-cudnn-cu12": "9.10.2.21",
    "nvidia-cublas-cu12": "12.8.4.1",
    "nvidia-cufft-cu12": "11.3.3.83",
    "nvidia-curand-cu12": "10.3.9.90",
    "nvidia-cusolver-cu12": "11.7.3.90",
    "nvidia-cusparse-cu12": "12.5.8.93",
    "nvidia-cusparselt-cu12": "0.7.1",
    "nvidia-nccl-cu12": "2.27.5",
    "nvidia-nvshmem-cu12": "3.3.20",
    "nvidia-nvtx-cu12": "12.8.90",
    "nvidia-nvjitlink-cu12": "12.8.93",
    "nvidia-cufile-cu12": "1.13.1.3",
    "triton": "3.5.0",
    "filelock": "3.20.0",
    "typing-extensions": "4.15.0",
    "sympy": "1.14.0",
    "mpmath": "1.3.0",
    "networkx": "3.5",
    "jinja2": "3.1.6",
    "markupsafe": "3.0.3",
    "fsspec": "2025.9.0",
}

# ONNX Runtime's CUDA provider: onnxruntime-gpu of the same version as the CPU library dfd loads
# (1.31.1), with its `cuda` and `cudnn` extras (CUDA 13), in a folder of its own: its cuDNN wheel
# installs the same file names as torch's.
ORT = {
    "onnxruntime-gpu": "1.31.1",
    "flatbuffers": "25.9.23",
    "numpy": "2.3.4",
    "packaging": "25.0",
    "protobuf": "6.33.0",
    # CUDA 13.0's own releases (ONNX Runtime's cu13 build asks ~=13.0, i.e. any 13.x; the first
    # minor is the one every CUDA 13 driver, R580 on, runs without minor-version caveats).
    "nvidia-cuda-nvrtc": "13.0.88",
    "nvidia-cuda-runtime": "13.0.96",
    "nvidia-cufft": "12.0.0.61",
    "nvidia-curand": "10.4.0.35",
    "nvidia-cudnn-cu13": "9.13.0.50",
    "nvidia-cublas": "13.0.2.14",
    "nvidia-nvjitlink": "13.0.88",
}
ORT_EXTRAS = {"cuda", "cudnn"}

ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "sys_platform": "linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}

WHEEL_TAGS = re.compile(r"-(cp311-cp311|cp311-abi3|py3-none|py2\.py3-none)-(manylinux[^-]*x86_64|any)\.whl$")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except OSError as e:
        sys.exit(f"{url}: {e}")


def project(name, cache={}):
    if name not in cache:
        cache[name] = json.loads(get(f"https://pypi.org/pypi/{name}/json"))
    return cache[name]


def wheel(name, version):
    """(file name, sha256, url) of the Linux x86_64 CPython 3.11 wheel of name==version."""
    files = project(name)["releases"].get(version)
    if not files:
        sys.exit(f"{name}=={version} is not on PyPI")
    found = [f for f in files if f["packagetype"] == "bdist_wheel" and WHEEL_TAGS.search(f["filename"])]
    if not found:
        sys.exit(f"{name}=={version} has no Linux x86_64 CPython 3.11 wheel")
    # The most specific first: a manylinux x86_64 build over a pure-Python one.
    found.sort(key=lambda f: ("any" in f["filename"], f["filename"]))
    f = found[0]
    url = f["url"]
    if url.startswith("../../"):  # a mirror serving PyPI's JSON with relative links
        url = "https://pypi.org/" + url[len("../../"):]
    return f["filename"], f["digests"]["sha256"], url


class RangeFile(io.RawIOBase):
    """A remote file read by HTTP range requests: enough for `zipfile` to read one member of a
    wheel (its central directory is at the end) without downloading the wheel."""

    def __init__(self, url):
        self.url, self.pos = url, 0
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=60) as response:
            self.size = int(response.headers["Content-Length"])

    def seekable(self):
        return True

    def readable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=io.SEEK_SET):
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence] + offset
        return self.pos

    def read(self, n=-1):
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{end - 1}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            data = response.read()
        self.pos += len(data)
        return data


def metadata(url):
    """A wheel's METADATA: its PEP 658 file where the index serves one, else read out of the
    wheel by range requests."""
    try:
        with urllib.request.urlopen(url + ".metadata", timeout=60) as response:
            return response.read().decode()
    except urllib.error.HTTPError:
        with zipfile.ZipFile(RangeFile(url)) as wheel_zip:
            name = next(n for n in wheel_zip.namelist() if n.endswith(".dist-info/METADATA"))
            return wheel_zip.read(name).decode()


def requires(url):
    """The Requires-Dist lines of a wheel."""
    text = metadata(url)
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def check_closed(pins, extras, label):
    by_name = {canonicalize_name(n): v for n, v in pins.items()}
    problems = []
    for name, version in pins.items():
        _, _, url = wheel(name, version)
        asked = extras if canonicalize_name(name) == canonicalize_name(next(iter(pins))) else set()
        for line in requires(url):
            req = Requirement(line)
            applies = req.marker is None or any(
                req.marker.evaluate({**ENVIRONMENT, "extra": e}) for e in (asked or {""})
            )
            if not applies:
                continue
            pinned = by_name.get(canonicalize_name(req.name))
            if pinned is None:
                problems.append(f"{name}=={version} needs {line}: not pinned")
            elif not req.specifier.contains(pinned, prereleases=True):
                problems.append(f"{name}=={version} needs {line}: pinned {pinned}")
    for p in problems:
        print(f"{label}: {p}", file=sys.stderr)
    return not problems


def render(pins, header):
    lines = [header]
    total = 0
    for name, version in pins.items():
        filename, sha, _ = wheel(name, version)
        size = next(f["size"] for f in project(name)["releases"][version] if f["filename"] == filename)
        total += size
        lines.append(f"# {filename} ({size:,} bytes)")
        lines.append(f"{name}=={version} --hash=sha256:{sha}")
    lines.insert(1, f"# {len(pins)} wheels, {total / 1e9:.2f} GB in all.")
    return "\n".join(lines) + "\n"


HEADER = "# Written by scripts/gpu-pins.py from PyPI's JSON API: edit the pins there, not here."


def main():
    check_only = "--check" in sys.argv[1:]
    files = [
        (HERE / "gpu-requirements.txt", TORCH, set(), "torch"),
        (HERE / "gpu-ort-requirements.txt", ORT, ORT_EXTRAS, "onnxruntime-gpu"),
    ]
    ok = True
    for path, pins, extras, label in files:
        ok &= check_closed(pins, extras, label)
        text = render(pins, HEADER)
        if check_only:
            if path.read_text() != text:
                print(f"{path.name} differs from what PyPI says now", file=sys.stderr)
                ok = False
        else:
            path.write_text(text)
    if not ok:
        sys.exit(1)
    print("pins resolve on PyPI, hashes match, every requirement is pinned")


if __name__ == "__main__":
    main()
