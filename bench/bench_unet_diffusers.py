# The reference half of bench_sample_step: one CFG sampling step's UNet evaluation (batch 2, the
# uncond and cond halves at once, as diffusers' SDXL pipeline batches them) through diffusers'
# UNet2DConditionModel with SDXL's config and random weights, on the same torch, no grad.
# Prints "unet_cfg_<side>x<side>_diffusers_s_per_step <median seconds>" and the process's peak RSS.
# Usage: python bench_unet_diffusers.py SIDE STEPS   (needs diffusers; scripts/make-diffusers-fixtures
# installs the pinned one into the torch venv)
import resource
import statistics
import sys
import time

import torch
from diffusers import UNet2DConditionModel

side, steps = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
unet = UNet2DConditionModel(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0).eval()
with torch.no_grad():
    for p in unet.parameters():
        p.normal_(0, 0.02)
x = torch.randn(2, 4, side, side)
t = torch.full((2,), 500)
context = torch.randn(2, 77, 2048)
added = {"text_embeds": torch.randn(2, 1280), "time_ids": torch.randn(2, 6)}
times = []
with torch.no_grad():
    unet(x, t, context, added_cond_kwargs=added)  # warm-up
    for _ in range(steps):
        start = time.perf_counter()
        unet(x, t, context, added_cond_kwargs=added)
        times.append(time.perf_counter() - start)
print(f"unet_cfg_{side}x{side}_diffusers_s_per_step {statistics.median(times):.2f}", flush=True)
print(f"unet_cfg_{side}x{side}_diffusers_peak_rss_gb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}")
