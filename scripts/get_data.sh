#!/usr/bin/env bash
# Put a dataset where the configs read it, offline where possible.
# Usage: bash scripts/get_data.sh fashion-mnist [DEST]  (DEST: data/fashion-mnist)
#
# Fashion-MNIST comes from Debian's dataset-fashion-mnist package when it is
# installed (`apt-get install dataset-fashion-mnist`), else from the
# official release. The four IDX files are extracted (MMPretrain reads the
# extracted files) and their contents checked: 60,000/10,000 images of
# 28x28, 6,000/1,000 per class. Contents, not archive hashes: the package's
# .gz files differ byte-wise from the release's.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-}
if [ "$name" != fashion-mnist ]; then
  echo "usage: bash scripts/get_data.sh fashion-mnist [DEST]" >&2
  exit 2
fi
dest=${2:-data/fashion-mnist}
package=/usr/share/datasets/fashion-mnist
release=http://fashion-mnist.s3-website.eu-central-1.amazonaws.com
files="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

mkdir -p "$dest"
for file in $files; do
  if [ -f "$package/$file.gz" ]; then
    source="$package/$file.gz"
  else
    source="$dest/$file.gz"
    [ -f "$source" ] || curl -fsSL -o "$source" "$release/$file.gz" || {
      echo "error: cannot get $file.gz: install Debian's package" \
        "(apt-get install dataset-fashion-mnist) or download it from" \
        "$release into $dest" >&2
      exit 1
    }
  fi
  gzip -dc "$source" > "$dest/$file.tmp" && mv "$dest/$file.tmp" "$dest/$file"
done

python3 - "$dest" <<'PY'
import collections, struct, sys
root = sys.argv[1]
for split, n in (('train', 60000), ('t10k', 10000)):
    with open(f'{root}/{split}-images-idx3-ubyte', 'rb') as f:
        magic, count, rows, cols = struct.unpack('>4I', f.read(16))
        pixels = len(f.read())
    with open(f'{root}/{split}-labels-idx1-ubyte', 'rb') as f:
        magic_l, count_l = struct.unpack('>2I', f.read(8))
        labels = collections.Counter(f.read())
    per_class = n // 10
    ok = (magic, magic_l, count, count_l, rows, cols, pixels) == (
        2051, 2049, n, n, 28, 28, n * 784) and labels == {
            c: per_class for c in range(10)}
    if not ok:
        sys.exit(f'error: {root}/{split}-*-ubyte are not Fashion-MNIST '
                 f'({count} images of {rows}x{cols}, labels {dict(labels)}); '
                 f'expected {n} of 28x28, {per_class} per class. Delete '
                 f'{root} and run this script again.')
    print(f'{root}: {split} {n} images, {per_class} per class: ok')
PY
