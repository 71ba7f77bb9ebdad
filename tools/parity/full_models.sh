#!/usr/bin/env bash
# Full-size parity, on demand (needs the Python venv of tools/parity/README.md; ~500 MB of
# files under target/full_models, not committed):
#   torchvision deeplabv3_resnet50, smp Unet(resnet34), timm swin_tiny — random weights,
#   state dicts saved with torch.save, then loaded by zoo-models and compared on flex.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/work/pyenv/bin/python}
OUT=${ZOO_FULL_MODELS_DIR:-$PWD/target/full_models}
(cd tools/parity && "$PYTHON" full_models.py "$OUT")
ZOO_FULL_MODELS_DIR="$OUT" ZOO_TEST_DEVICES=flex \
  cargo test -p zoo-models --test models full_size -- --ignored --nocapture
