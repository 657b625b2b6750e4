# The reference half of bench_tagger: timm's forward of the same tagger configs on the same torch,
# in images per second, one line per figure ("tagger_<name>_<size>_timm_img_per_s value").
# Usage: python bench_tagger_timm.py FIXTURES_DIR SECONDS NAME [--real]   (needs timm)
import json
import pathlib
import sys
import time

import timm
import torch

fixtures = pathlib.Path(sys.argv[1])
budget = float(sys.argv[2])
name = sys.argv[3]
real = "--real" in sys.argv
torch.set_num_threads(torch.get_num_threads())
REAL_ARGS = {  # the hub configs' model_args (tests/fixtures/tagger/make_fixtures.py)
    "vit": ("vit_base_patch16_224", {"img_size": 448, "class_token": False, "global_pool": "avg", "fc_norm": False, "act_layer": "gelu_tanh"}),
    "vit_large": ("vit_large_patch16_224", {"img_size": 448, "class_token": False, "global_pool": "avg", "fc_norm": False, "act_layer": "gelu_tanh"}),
    "swinv2": ("swinv2_base_window8_256", {"img_size": 448, "window_size": 14, "act_layer": "gelu"}),
    "convnext": ("convnext_base", {"act_layer": "gelu"}),
    "eva02": ("eva02_large_patch14_448", {"img_size": 448}),
}


def rate(model, size, batch):
    x = torch.rand(batch, 3, size, size) * 2 - 1
    with torch.inference_mode():
        model(x)  # warm-up
        n, start = 0, time.perf_counter()
        while True:
            model(x)
            n += batch
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                return n / elapsed


cfg = json.loads((fixtures / name / "config.json").read_text())
model = timm.create_model(cfg["architecture"], pretrained=False, num_classes=cfg["num_classes"], **cfg["model_args"]).eval()
print(f"tagger_{name}_tiny_timm_img_per_s {rate(model, cfg['pretrained_cfg']['input_size'][1], 8):.2f}", flush=True)
if real:
    arch, args = REAL_ARGS[name]
    model = timm.create_model(arch, pretrained=False, num_classes=10861, **args).eval()
    print(f"tagger_{name}_448_timm_img_per_s {rate(model, 448, 1):.3f}", flush=True)
