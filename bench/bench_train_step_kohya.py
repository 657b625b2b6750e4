# The reference half of bench_train_step: kohya sd-scripts' own SDXL LoRA training step on the same
# torch, as sdxl_train_network.py takes it with cached latents and text-encoder outputs
# (--network_train_unet_only --sdpa, networks.lora with its default SDXL targets, AdamW, max_grad_norm
# 1): its SdxlUNet2DConditionModel with random weights N(0, 0.02), frozen, float32; the LoRA
# float32; noise added at timestep 500 as DDPMScheduler.add_noise does (SDXL's scaled-linear
# betas), epsilon MSE loss, backward, gradient clipping, optimizer step, gradients set to none.
# Prints "train_step_<side>_kohya_s <median seconds>" and the process's peak RSS.
# Usage: python bench_train_step_kohya.py SD_SCRIPTS_DIR SIDE RANK WARMUP STEPS [--checkpointing]
#   SD_SCRIPTS_DIR: a checkout of github.com/kohya-ss/sd-scripts (not part of this repository); its
#   imports need diffusers, transformers, einops, opencv-python-headless, torchvision, Pillow.
import resource
import statistics
import sys
import time

sd_scripts = sys.argv[1]
side, rank, warmup, steps = (int(v) for v in sys.argv[2:6])
checkpointing = "--checkpointing" in sys.argv
sys.path.insert(0, sd_scripts)

import torch  # noqa: E402
from library import sdxl_original_unet  # noqa: E402
from networks import lora  # noqa: E402

torch.manual_seed(0)
unet = sdxl_original_unet.SdxlUNet2DConditionModel()
unet.set_use_sdpa(True)
with torch.no_grad():
    for p in unet.parameters():
        p.normal_(0, 0.02)
unet.requires_grad_(False)
if checkpointing:
    unet.enable_gradient_checkpointing()
unet.train(checkpointing)  # train_network.py: train() with gradient checkpointing, else eval()

network = lora.create_network(1.0, rank, 1.0, None, [], unet)
network.apply_to([], unet, apply_text_encoder=False, apply_unet=True)
network.train()
params = [p for p in network.parameters()]
for p in params:
    p.requires_grad_(True)
optimizer = torch.optim.AdamW(params, lr=1e-4)

betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
alphas_cumprod = torch.cumprod(1 - betas, 0)
latents = torch.randn(1, 4, side, side)
noise = torch.randn(1, 4, side, side)
timesteps = torch.full((1,), 500, dtype=torch.long)
context = torch.randn(1, 77, 2048)
y = torch.randn(1, 2816)
a = alphas_cumprod[500].float()


def step():
    noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
    pred = unet(noisy, timesteps, context, y)
    loss = torch.nn.functional.mse_loss(pred.float(), noise, reduction="mean")
    loss.item()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


times = []
for i in range(warmup + steps):
    start = time.perf_counter()
    step()
    if i >= warmup:
        times.append(time.perf_counter() - start)
print(f"train_step_{side}_kohya_s {statistics.median(times):.4f}", flush=True)
print(f"train_step_{side}_kohya_peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
