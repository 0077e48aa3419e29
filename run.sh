#!/usr/bin/env bash
# torchkata's entry point. From a fresh clone:
#   ./run.sh main    set up, then run the whole catalog at the default scale and write the report
#   ./run.sh test    set up, then run the test suite
# and also:  ./run.sh setup | data | smoke
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY=$VENV/bin/python

setup() {
  # reinstall only when the pins or the package metadata change
  local stamp="$VENV/.installed-$(cat envs/requirements-*.txt pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -r envs/requirements-cpu.txt
    "$PY" -m pip install --quiet --no-deps -e .
    # the SLURM executor plugin beside the venv, not in it (see envs/requirements-slurm.txt)
    "$PY" -m pip install --quiet --no-deps --upgrade --target build/slurm-plugin -r envs/requirements-slurm.txt
    touch "$stamp"
  fi
}

# Fashion-MNIST's IDX files into data/external/fashion-mnist (config key data.fashion_mnist), from
# Debian's dataset-fashion-mnist: the installed copy if there is one, else the package unpacked here
# (apt-get download + dpkg -x need no root).
data() {
  local dest=data/external/fashion-mnist system=/usr/share/datasets/fashion-mnist
  if ls "$dest"/train-images-idx3-ubyte* >/dev/null 2>&1; then return; fi
  mkdir -p "$dest"
  if [ -d "$system" ]; then
    cp "$system"/*-ubyte* "$dest"/
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null 2>&1); then
    [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null
    (cd "$tmp" && apt-get download dataset-fashion-mnist)
  fi
  dpkg -x "$tmp"/dataset-fashion-mnist_*.deb "$tmp/root"
  cp "$tmp/root$system"/*-ubyte* "$dest"/
  rm -rf "$tmp"
}

activate() { export PATH="$PWD/$VENV/bin:$PATH"; }

case "${1:-}" in
  setup) setup ;;
  data) data ;;
  main)
    setup; data; activate
    snakemake --cores 2 all
    snakemake --report results/report.html
    echo "report: results/report.html · summary: results/summary/summary.csv"
    ;;
  smoke)
    setup; data; activate
    snakemake --cores 2 --config scale=smoke -- all
    ;;
  test)
    setup; data; activate
    shift
    # two workers: the pipeline's tests on one, the exercises' on the other (tests/conftest.py)
    python -m pytest -n 2 --dist loadgroup "$@"
    ;;
  *)
    echo "usage: ./run.sh main | test [pytest args] | smoke | setup | data" >&2
    exit 2
    ;;
esac
