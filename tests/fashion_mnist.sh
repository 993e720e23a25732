# Sourced by the test scripts that train on Fashion-MNIST: exits 77 (meson's "skipped") when the data
# set is not installed; defines fail and a temporary folder $tmp removed at exit.
dir=/usr/share/datasets/fashion-mnist
[ -e "$dir/train-images-idx3-ubyte.gz" ] || [ -e "$dir/train-images-idx3-ubyte" ] || { echo "skipped: no $dir"; exit 77; }
fail() { echo "FAIL: $1"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
